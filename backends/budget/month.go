package budget

import "time"

// Month is a calendar month in UTC, written "2006-01".
type Month string

// MonthOf returns the UTC month t falls in.
func MonthOf(t time.Time) Month { return Month(t.UTC().Format("2006-01")) }

// Start returns the month's first instant.
func (m Month) Start() time.Time {
	t, err := time.Parse("2006-01", string(m))
	if err != nil {
		return time.Time{}
	}
	return t
}

// End returns the next month's first instant: when the month's budget
// resets.
func (m Month) End() time.Time { return m.Start().AddDate(0, 1, 0) }

// Valid reports whether m is a month written "2006-01".
func (m Month) Valid() bool {
	_, err := time.Parse("2006-01", string(m))
	return err == nil
}

// String returns "2006-01".
func (m Month) String() string { return string(m) }

// piece is the part of a charged interval that falls in one month.
type piece struct {
	month   Month
	seconds float64
}

// split cuts [from, until) at month boundaries. An interval that began
// before the previous month (a mark months old) is charged from the
// previous month's start: spend is kept for a few months only.
func split(from, until time.Time) []piece {
	if !until.After(from) {
		return nil
	}
	cur := MonthOf(until)
	if floor := MonthOf(cur.Start().Add(-time.Nanosecond)).Start(); from.Before(floor) {
		from = floor
	}
	var out []piece
	if b := cur.Start(); from.Before(b) {
		out = append(out, piece{MonthOf(from), b.Sub(from).Seconds()})
		from = b
	}
	if until.After(from) {
		out = append(out, piece{cur, until.Sub(from).Seconds()})
	}
	return out
}

// monthName formats m for messages: "December 2026".
func monthName(m Month) string { return m.Start().Format("January 2006") }
