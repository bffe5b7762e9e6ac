package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// Action is what a spent budget does to new sandboxes.
type Action string

// The actions.
const (
	Refuse Action = "refuse" // creating a sandbox fails with resource_exhausted
	Alert  Action = "alert"  // only the WARN line and the metrics say so
)

// Config configures a Budget. Zero values take the documented defaults.
type Config struct {
	// MonthlyUSD is the overall monthly limit; 0 means none.
	MonthlyUSD float64
	// Projects are the projects' own monthly limits; a project without one
	// is bound by the overall limit only.
	Projects map[string]float64
	// Known are the configured projects: their spend is exported even
	// without a limit of their own (the metrics' labels stay bounded).
	Known []string
	// WarnAt is the used ratio (0..1) that logs the WARN line; default 0.75.
	WarnAt float64
	// Action is what a spent budget does; default Refuse.
	Action Action
	// ForecastAfter is how much of the month's data the forecast waits
	// for; default 3 days.
	ForecastAfter time.Duration
	// Contact is whom a refusal tells the agent to ask; default "the
	// operator of this gitgate".
	Contact string
	// Store keeps the spend; required.
	Store Store
	// Registerer, if set, registers the gitgate_budget_* metrics.
	Registerer prometheus.Registerer
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Now, if nil, is time.Now.
	Now func() time.Time
}

// Budget computes month-to-date spend against the limits, exports it,
// warns once per month and scope past WarnAt and refuses new sandboxes
// once a limit is reached (Action Refuse).
type Budget struct {
	cfg     Config
	metrics *metrics
	mu      sync.Mutex
	warned  map[string]Month // scope → the month its WarnAt line was logged
	spent   map[string]Month // scope → the month its spent line was logged
	last    []Status         // the last statuses read, used while the store fails
}

// Status is one scope's month so far.
type Status struct {
	Scope    string  `json:"scope"` // TotalScope or a project
	Month    Month   `json:"month"`
	SpentUSD float64 `json:"spent_usd"`
	LimitUSD float64 `json:"limit_usd,omitempty"` // 0: no limit
	Ratio    float64 `json:"ratio,omitempty"`     // SpentUSD / LimitUSD
	// ForecastUSD is the spend projected to the month's end, linear on
	// the month so far; nil until ForecastAfter of data.
	ForecastUSD *float64 `json:"forecast_usd,omitempty"`
	// ReachAt is when the forecast reaches the limit, if within the month.
	ReachAt  *time.Time `json:"reach_at,omitempty"`
	ResetsAt time.Time  `json:"resets_at"` // the next month's start (UTC)
	Action   Action     `json:"action"`
}

// Spent reports whether the scope has a limit and reached it.
func (s Status) Spent() bool { return s.LimitUSD > 0 && s.SpentUSD >= s.LimitUSD }

// New returns a Budget.
func New(cfg Config) (*Budget, error) {
	if cfg.Store == nil {
		return nil, errors.New("budget: Config needs a Store")
	}
	if cfg.WarnAt <= 0 {
		cfg.WarnAt = 0.75
	}
	cfg.Action = cmp.Or(cfg.Action, Refuse)
	if cfg.Action != Refuse && cfg.Action != Alert {
		return nil, fmt.Errorf("budget: unknown action %q", cfg.Action)
	}
	if cfg.ForecastAfter <= 0 {
		cfg.ForecastAfter = 3 * 24 * time.Hour
	}
	cfg.Contact = cmp.Or(cfg.Contact, "the operator of this gitgate")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Budget{cfg: cfg, warned: map[string]Month{}, spent: map[string]Month{}}
	b.metrics = newMetrics(cfg.Registerer, b.scopes(nil))
	return b, nil
}

// limit is scope's limit, 0 when none.
func (b *Budget) limit(scope string) float64 {
	if scope == TotalScope {
		return b.cfg.MonthlyUSD
	}
	return b.cfg.Projects[scope]
}

// scopes are the total, the known projects, the projects with limits and
// those found in spend (only for statuses, not metrics), sorted after the
// total.
func (b *Budget) scopes(spend map[string]float64) []string {
	set := map[string]bool{}
	for _, p := range b.cfg.Known {
		set[p] = true
	}
	for p := range b.cfg.Projects {
		set[p] = true
	}
	for p := range spend {
		set[p] = true
	}
	delete(set, TotalScope)
	return append([]string{TotalScope}, slices.Sorted(maps.Keys(set))...)
}

// exported reports whether scope has metrics (a bounded label).
func (b *Budget) exported(scope string) bool {
	_, limited := b.cfg.Projects[scope]
	return scope == TotalScope || limited || slices.Contains(b.cfg.Known, scope)
}

// Status reads this month's spend and returns every scope's status; it
// also updates the metrics and logs the threshold lines.
func (b *Budget) Status(ctx context.Context) ([]Status, error) {
	now := b.cfg.Now().UTC()
	month := MonthOf(now)
	spend, err := b.cfg.Store.Spent(ctx, month)
	if err != nil {
		b.metrics.storeErrors.Inc()
		return nil, err
	}
	out := make([]Status, 0, len(spend.ByScope)+1)
	for _, scope := range b.scopes(spend.ByScope) {
		out = append(out, b.status(scope, month, now, spend))
	}
	b.observe(out)
	return out, nil
}

// status computes one scope's status.
func (b *Budget) status(scope string, month Month, now time.Time, spend Spend) Status {
	s := Status{Scope: scope, Month: month, SpentUSD: spend.ByScope[scope], LimitUSD: b.limit(scope),
		ResetsAt: month.End(), Action: b.cfg.Action}
	if s.LimitUSD > 0 {
		s.Ratio = s.SpentUSD / s.LimitUSD
	}
	since := spend.Since
	if since.Before(month.Start()) {
		since = month.Start()
	}
	elapsed := now.Sub(since)
	if spend.Since.IsZero() || elapsed < b.cfg.ForecastAfter || elapsed <= 0 {
		return s
	}
	rate := s.SpentUSD / elapsed.Seconds() // dollars per second so far
	forecast := s.SpentUSD + rate*month.End().Sub(now).Seconds()
	s.ForecastUSD = &forecast
	if s.LimitUSD > 0 && !s.Spent() && rate > 0 {
		at := now.Add(time.Duration((s.LimitUSD - s.SpentUSD) / rate * float64(time.Second)))
		if at.Before(month.End()) {
			s.ReachAt = &at
		}
	}
	return s
}

// observe exports statuses and logs, once per month and scope, the WarnAt
// line and the spent line.
func (b *Budget) observe(statuses []Status) {
	b.mu.Lock()
	b.last = statuses
	b.mu.Unlock()
	for _, s := range statuses {
		if !b.exported(s.Scope) {
			continue
		}
		b.metrics.set(s)
		if s.LimitUSD <= 0 {
			continue
		}
		if s.Ratio >= b.cfg.WarnAt && b.once(b.warned, s) { // also when it went past WarnAt and 100 % at once
			b.cfg.Logger.Warn(fmt.Sprintf("sandbox budget at %.0f %%", 100*s.Ratio), b.logAttrs(s)...)
		}
		if s.Spent() && b.once(b.spent, s) {
			b.cfg.Logger.Warn("sandbox budget spent: "+b.consequence(), b.logAttrs(s)...)
		}
	}
}

// once reports whether the line in seen was not logged yet this month for
// s's scope, and records it.
func (b *Budget) once(seen map[string]Month, s Status) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seen[s.Scope] == s.Month {
		return false
	}
	seen[s.Scope] = s.Month
	return true
}

func (b *Budget) consequence() string {
	if b.cfg.Action == Refuse {
		return "new sandboxes are refused until it resets (budget.action: refuse); existing workspaces keep working"
	}
	return "nothing is refused (budget.action: alert)"
}

func (b *Budget) logAttrs(s Status) []any {
	attrs := []any{"scope", s.Scope, "month", s.Month.String(), "spent_usd", round(s.SpentUSD), "limit_usd", s.LimitUSD,
		"ratio", round(s.Ratio), "resets_at", s.ResetsAt.Format(time.RFC3339)}
	if s.ForecastUSD != nil {
		attrs = append(attrs, "forecast_usd", round(*s.ForecastUSD))
	}
	if s.ReachAt != nil {
		attrs = append(attrs, "reach_at", s.ReachAt.Format(time.RFC3339))
	}
	return attrs
}

func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// Allow returns nil when a sandbox may be created for project ("" for a
// sandbox without an owner yet, such as a warm pool's), and a
// resource_exhausted error when the project's or the overall budget is
// spent and the action is Refuse. When the store cannot be read, the last
// statuses read decide; without any, the creation is allowed (a budget
// store outage does not stop the agents; gitgate_budget_store_errors_total
// says so).
func (b *Budget) Allow(ctx context.Context, project string) error {
	statuses, err := b.Status(ctx)
	if err != nil {
		b.mu.Lock()
		statuses = b.last
		b.mu.Unlock()
		b.cfg.Logger.Warn("the budget store cannot be read; the last spend read decides", "err", err)
		if len(statuses) == 0 || statuses[0].Month != MonthOf(b.cfg.Now()) {
			return nil
		}
	}
	if b.cfg.Action != Refuse {
		return nil
	}
	for _, s := range statuses {
		if (s.Scope == TotalScope || (project != "" && s.Scope == project)) && s.Spent() {
			b.metrics.refusals.WithLabelValues(s.Scope).Inc()
			return b.refusal(s)
		}
	}
	return nil
}

// refusal is the error an agent gets, written for it and its operator.
func (b *Budget) refusal(s Status) error {
	what, key := "the overall monthly sandbox budget", "budget.monthly_usd"
	if s.Scope != TotalScope {
		what, key = fmt.Sprintf("the monthly sandbox budget of project %q", s.Scope), "budget.projects."+s.Scope+".monthly_usd"
	}
	return backends.Errorf(backends.ResourceExhausted,
		"%s is spent: $%.2f of $%.2f in %s (UTC), so no new sandbox is created until it resets on %s. "+
			"Workspaces that already have a sandbox keep working; work in one of them, or ask %s to raise %s",
		what, s.SpentUSD, s.LimitUSD, monthName(s.Month), s.ResetsAt.Format("2006-01-02 15:04 MST"), b.cfg.Contact, key)
}

// Charge is one sandbox's running time to bill.
type Charge struct {
	Sandbox   string
	Project   string    // "" for a sandbox without an owner (charged to the total only)
	From      time.Time // when it started running (or was first seen)
	Until     time.Time
	PerSecond float64 // US dollars per second
	End       bool    // the sandbox ended at Until
}

// Charge bills c from the sandbox's mark (or c.From) to c.Until. It
// reports whether the sandbox had ended already (another process ended
// it): nothing more is to be charged for it.
func (b *Budget) Charge(ctx context.Context, c Charge) (ended bool, err error) {
	prev, err := b.cfg.Store.Advance(ctx, c.Sandbox, c.Until, c.End)
	if err != nil {
		b.metrics.storeErrors.Inc()
		return false, err
	}
	if prev.Ended {
		return true, nil
	}
	from := c.From
	if prev.Until.After(from) {
		from = prev.Until
	}
	for _, p := range split(from, c.Until) {
		usd := p.seconds * c.PerSecond
		amounts := map[string]float64{TotalScope: usd}
		if c.Project != "" {
			amounts[c.Project] = usd
		}
		at := from
		if ms := p.month.Start(); ms.After(at) {
			at = ms
		}
		if err := b.cfg.Store.Add(ctx, p.month, at, amounts); err != nil {
			b.metrics.storeErrors.Inc()
			return false, err
		}
	}
	return false, nil
}
