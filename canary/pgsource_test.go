package canary

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/jackc/pgx/v5"
)

// copyLedger copies the entries next yields into the PostgreSQL ledger
// (every column, as PGStore writes them) and returns how many.
func copyLedger(ctx context.Context, s *PGSource, next func() (Entry, bool)) (int64, error) {
	return s.pool.CopyFrom(ctx, pgx.Identifier{"gitgate_canary_ledger"},
		ledgerColumns,
		pgx.CopyFromFunc(func() ([]any, error) {
			e, ok := next()
			if !ok {
				return nil, nil
			}
			stage, _ := e.storedStage()
			return []any{e.At, string(e.Kind), string(e.Op), string(e.Routed), string(e.Backend), e.FellBack, string(e.Category),
				durationMS(e.Duration), string(e.Outcome), e.Detail, stage, e.CostUSD, e.InFlight, durationMS(e.Wait), e.Drill}, nil
		}))
}

func insertEntries(t testing.TB, s *PGSource, es []Entry) {
	t.Helper()
	i := 0
	n, err := copyLedger(t.Context(), s, func() (Entry, bool) {
		if i == len(es) {
			return Entry{}, false
		}
		i++
		return es[i-1], true
	})
	if err != nil || n != int64(len(es)) {
		t.Fatalf("copied %d of %d entries: %v", n, len(es), err)
	}
}

func openPGSource(t testing.TB, dsn string, now time.Time) *PGSource {
	t.Helper()
	s, err := OpenPGSource(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.Logger, s.Now = quiet, fixedNow(now)
	return s
}

func countRows(t testing.TB, s *PGSource, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM gitgate_canary_ledger WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPGSourceAgreesWithEntries: the PostgreSQL ledger read through
// PGSource gives Entries' cells, over whole and partial periods; the first
// read rolls the complete hours up, and later reads serve them from the
// roll-up: with the rolled-up raw rows pruned the totals stay, and
// rollbacks are kept raw.
func TestPGSourceAgreesWithEntries(t *testing.T) {
	es := genLedger{Start: genStart, Hours: 30, Agents: 3, Rate: 0.7, Seed: 1}.entries(t)
	src := openPGSource(t, backendtest.PostgresDSN(t), genStart.Add(26*time.Hour+5*time.Minute))
	insertEntries(t, src, es)
	periods := [][2]time.Time{
		{genStart, genStart.Add(30 * time.Hour)},
		{genStart.Add(5 * time.Hour), genStart.Add(27 * time.Hour)},
		{genStart.Add(3*time.Hour + 30*time.Minute), genStart.Add(10*time.Hour + 15*time.Minute)},
		{genStart.Add(26 * time.Hour), genStart.Add(40 * time.Hour)},
	}
	check := func(what string) {
		t.Helper()
		for _, p := range periods {
			sameRollups(t, fmt.Sprintf("%s %v..%v", what, p[0], p[1]), want(t, es, p[0], p[1]), collect(t, src, p[0], p[1]))
		}
	}
	all := periods[0]
	sameRollups(t, "first read", want(t, es, all[0], all[1]), collect(t, src, all[0], all[1]))
	first := src.LastRead()
	inComplete := countRows(t, src, `at < $1`, genStart.Add(25*time.Hour))
	if first.RolledRows != inComplete || !first.Watermark.Equal(genStart.Add(25*time.Hour)) || first.RawRows != int64(len(es))-inComplete {
		t.Fatalf("the first read rolled up %+v; %d rows of complete hours, %d in all", first, inComplete, len(es))
	}
	check("roll-up in place")
	collect(t, src, all[0], all[1])
	if st := src.LastRead(); st.RolledRows != 0 || st.RollupCells == 0 || st.RawRows != int64(len(es))-inComplete {
		t.Fatalf("a later read did not use the roll-up: %+v", st)
	}

	pruned, err := src.PruneRawBefore(t.Context(), genStart.Add(1000*time.Hour))
	rollbacks := int64(0)
	for _, e := range es {
		if e.Kind == KindRollback && e.At.Before(first.Watermark) {
			rollbacks++
		}
	}
	if err != nil || pruned != inComplete-rollbacks || rollbacks == 0 {
		t.Fatalf("pruned %d rows (%v), want the %d rolled up but the %d rollbacks", pruned, err, inComplete, rollbacks)
	}
	if n := countRows(t, src, `kind = 'rollback' AND at < $1`, first.Watermark); n != rollbacks {
		t.Fatalf("%d rollbacks left, want %d", n, rollbacks)
	}
	check("rolled-up rows pruned")

	src.Now = fixedNow(genStart.Add(40 * time.Hour))
	check("every hour complete")
	if n, err := src.PruneRawBefore(t.Context(), genStart.Add(1000*time.Hour)); err != nil || n != int64(len(es))-inComplete {
		t.Fatalf("pruned %d rows (%v), want %d", n, err, int64(len(es))-inComplete)
	}
	check("everything pruned")
	collect(t, src, all[0], all[1])
	if st := src.LastRead(); st.RawRows != 0 || st.RolledRows != 0 {
		t.Fatalf("%+v", st)
	}
}

// TestPGSourceCountsLateRows: rows that arrive after their hour was
// rolled up are rolled up by the next read (they survive pruning), and
// rows for open hours are read raw.
func TestPGSourceCountsLateRows(t *testing.T) {
	es := genLedger{Start: genStart, Hours: 20, Agents: 3, Rate: 0.7, Seed: 4}.entries(t)
	src := openPGSource(t, backendtest.PostgresDSN(t), genStart.Add(18*time.Hour+30*time.Minute))
	insertEntries(t, src, es)
	span := [2]time.Time{genStart, genStart.Add(24 * time.Hour)}
	sameRollups(t, "before", want(t, es, span[0], span[1]), collect(t, src, span[0], span[1]))

	late2 := genLedger{Start: genStart.Add(2 * time.Hour), Hours: 1, Agents: 2, Rate: 1, Seed: 6}.entries(t)
	late19 := genLedger{Start: genStart.Add(19 * time.Hour), Hours: 1, Agents: 2, Rate: 1, Seed: 7}.entries(t)
	insertEntries(t, src, slices.Concat(late2, late19))
	all := slices.Concat(es, late2, late19)
	sameRollups(t, "late rows", want(t, all, span[0], span[1]), collect(t, src, span[0], span[1]))
	if st := src.LastRead(); st.RolledRows != int64(len(late2)) {
		t.Fatalf("the read rolled up %d rows, want the %d late ones: %+v", st.RolledRows, len(late2), st)
	}
	if _, err := src.PruneRawBefore(t.Context(), genStart.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, src, `at < $1 AND kind <> 'rollback'`, genStart.Add(18*time.Hour)); n != 0 {
		t.Fatalf("%d rolled-up rows not pruned", n)
	}
	sameRollups(t, "late rows, pruned", want(t, all, span[0], span[1]), collect(t, src, span[0], span[1]))
}

// TestPGSourceRollsUpOnce: reports reading at the same time roll each
// row up once (the advisory lock), and both answer in full.
func TestPGSourceRollsUpOnce(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	now := genStart.Add(50 * time.Hour)
	es := genLedger{Start: genStart, Hours: 48, Agents: 3, Rate: 0.7, Seed: 13}.entries(t)
	srcs := []*PGSource{openPGSource(t, dsn, now), openPGSource(t, dsn, now), openPGSource(t, dsn, now)}
	insertEntries(t, srcs[0], es)
	span := [2]time.Time{genStart, genStart.Add(48 * time.Hour)}
	got := make([]Rollup, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() {
			r := Rollup{}
			errs[i] = s.Cells(t.Context(), span[0], span[1], func(k Key, c *Cell) error {
				if r[k] == nil {
					r[k] = &Cell{}
				}
				r[k].Merge(c)
				return nil
			})
			got[i] = r
		})
	}
	wg.Wait()
	w := want(t, es, span[0], span[1])
	rolled := int64(0)
	for i := range srcs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		sameRollups(t, fmt.Sprintf("reader %d", i), w, got[i])
		rolled += srcs[i].LastRead().RolledRows
	}
	if rolled != int64(len(es)) {
		t.Fatalf("the readers rolled up %d rows between them, want each of the %d once", rolled, len(es))
	}
	var calls int64
	if err := srcs[0].pool.QueryRow(t.Context(), `SELECT coalesce(sum((cell->'calls'->>'calls')::bigint), 0) FROM gitgate_canary_rollup`).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if want := countRows(t, srcs[0], `kind = 'call'`); calls != want {
		t.Fatalf("the roll-up holds %d calls, the ledger %d", calls, want)
	}
}

// TestPGSourceHoldsFewCells: rolling up and reading a long ledger holds
// the cells of three hours (and a bounded number for late rows).
func TestPGSourceHoldsFewCells(t *testing.T) {
	es := genLedger{Start: genStart, Hours: 24 * 14, Agents: 2, Rate: 0.5, Seed: 8}.entries(t)
	perHour := map[time.Time]map[Key]bool{}
	for _, e := range es {
		k := KeyOf(e)
		if perHour[k.Hour] == nil {
			perHour[k.Hour] = map[Key]bool{}
		}
		perHour[k.Hour][k] = true
	}
	most, total := 0, 0
	for _, ks := range perHour {
		most, total = max(most, len(ks)), total+len(ks)
	}
	bound := openHours*most + maxLateCells
	span := [2]time.Time{genStart, genStart.Add(24 * 14 * time.Hour)}
	for _, now := range []time.Time{genStart, genStart.Add(24 * 15 * time.Hour)} { // raw only; rolled up
		src := openPGSource(t, backendtest.PostgresDSN(t), now)
		insertEntries(t, src, es)
		sameRollups(t, "long ledger", want(t, es, span[0], span[1]), collect(t, src, span[0], span[1]))
		st := src.LastRead()
		if st.MaxOpenCells > bound || st.MaxOpenCells == 0 || total < 4*bound {
			t.Fatalf("held %d cells at once (bound %d; %d cells in all): %+v", st.MaxOpenCells, bound, total, st)
		}
	}
}

// TestPGSourceUpgradesAnOldLedger: a ledger table made before stages,
// costs and waits were recorded gains their columns when a source opens
// it (twice is fine), and its rows read as stage -1.
func TestPGSourceUpgradesAnOldLedger(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if _, err := conn.Exec(t.Context(), `CREATE TABLE gitgate_canary_ledger (
	id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, op text NOT NULL, routed text NOT NULL DEFAULT '',
	backend text NOT NULL DEFAULT '', fell_back boolean NOT NULL DEFAULT false, category text NOT NULL DEFAULT '',
	duration_ms double precision NOT NULL DEFAULT 0, outcome text NOT NULL DEFAULT '', detail text NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	at := genStart.Add(90 * time.Minute)
	if _, err := conn.Exec(t.Context(), `INSERT INTO gitgate_canary_ledger (at, kind, op, routed, backend, duration_ms)
		VALUES ($1, 'call', 'push', 'approach2', 'approach2', 1500)`, at); err != nil {
		t.Fatal(err)
	}
	openPGSource(t, dsn, genStart)
	src := openPGSource(t, dsn, genStart.Add(5*time.Hour))
	r := collect(t, src, genStart, genStart.Add(2*time.Hour))
	k := Key{Hour: genStart.Add(time.Hour), Op: backends.OpPush, Routed: backends.Approach2, Stage: -1}
	if c := r[k]; len(r) != 1 || c == nil || c.Calls.N != 1 || c.Calls.Latency.Quantile(0.5) < 1485 || c.Calls.Latency.Quantile(0.5) > 1515 {
		t.Fatalf("the old row reads as %v", r)
	}
}
