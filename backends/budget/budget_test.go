package budget

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// clock is a settable Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func fileStore(t *testing.T) Store {
	s, err := OpenFileStore(filepath.Join(t.TempDir(), "budget.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestBudget is a budget of $10 overall and $4 for alpha on a file
// store, logging into the returned buffer.
func newTestBudget(t *testing.T, c *clock, store Store, reg prometheus.Registerer) (*Budget, *testkit.SyncBuffer) {
	logs := &testkit.SyncBuffer{}
	b, err := New(Config{MonthlyUSD: 10, Projects: map[string]float64{"alpha": 4}, Known: []string{"alpha", "beta"},
		Store: store, Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: c.now, Contact: "ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return b, logs
}

func statusOf(t *testing.T, b *Budget, scope string) Status {
	t.Helper()
	all, err := b.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Scope == scope {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", scope, all)
	return Status{}
}

// TestMonthRollover: a charge over a month boundary (UTC) is split between
// the months, and the new month starts from its own share.
func TestMonthRollover(t *testing.T) {
	c := &clock{time.Date(2027, 1, 1, 0, 0, 30, 0, time.UTC)}
	store := fileStore(t)
	b, _ := newTestBudget(t, c, store, nil)
	ch := Charge{Sandbox: "s", Project: "alpha", From: c.t.Add(-90 * time.Second), Until: c.t, PerSecond: 0.01}
	if _, err := b.Charge(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	dec, _ := store.Spent(t.Context(), "2026-12")
	jan, _ := store.Spent(t.Context(), "2027-01")
	if math.Abs(dec.ByScope["alpha"]-0.60) > 1e-9 || math.Abs(jan.ByScope["alpha"]-0.30) > 1e-9 || math.Abs(jan.ByScope[TotalScope]-0.30) > 1e-9 {
		t.Fatalf("December $%v, January $%v (total $%v); want $0.60 and $0.30", dec.ByScope["alpha"], jan.ByScope["alpha"], jan.ByScope[TotalScope])
	}
	s := statusOf(t, b, "alpha")
	if s.Month != "2027-01" || math.Abs(s.SpentUSD-0.30) > 1e-9 || !s.ResetsAt.Equal(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("January status %+v", s)
	}
	if !jan.Since.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("January's first charge %v, want its start", jan.Since)
	}
}

// TestForecast: no forecast before forecast_min_days of data; then a
// linear projection to the month's end and the day the limit is reached.
func TestForecast(t *testing.T) {
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) // 30 days
	c := &clock{start.Add(2 * 24 * time.Hour)}
	b, _ := newTestBudget(t, c, fileStore(t), nil)
	// $1 a day on alpha since the month began.
	if _, err := b.Charge(t.Context(), Charge{Sandbox: "s", Project: "alpha", From: start, Until: c.t, PerSecond: 1.0 / 86400}); err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, b, "alpha"); s.ForecastUSD != nil || s.ReachAt != nil {
		t.Fatalf("a forecast after 2 days: %+v", s)
	}
	c.t = start.Add(3 * 24 * time.Hour)
	if _, err := b.Charge(t.Context(), Charge{Sandbox: "s", Project: "alpha", From: start, Until: c.t, PerSecond: 1.0 / 86400}); err != nil {
		t.Fatal(err)
	}
	s := statusOf(t, b, "alpha")
	if s.ForecastUSD == nil || math.Abs(*s.ForecastUSD-30) > 1e-6 {
		t.Fatalf("forecast %v, want $30 ($1 a day over 30 days)", s.ForecastUSD)
	}
	if want := start.Add(4 * 24 * time.Hour); s.ReachAt == nil || s.ReachAt.Sub(want).Abs() > time.Second {
		t.Fatalf("reach at %v, want %v ($4 at $1 a day)", s.ReachAt, want)
	}
	if total := statusOf(t, b, TotalScope); total.ReachAt == nil || total.ReachAt.Sub(start.Add(10*24*time.Hour)).Abs() > time.Second {
		t.Fatalf("overall reach at %v, want day 10", total.ReachAt)
	}
}

// TestThresholds: one WARN line per month and scope at 75 %, one when
// spent; the gauges; at 100 % a refusal for the project and not for
// another; the overall budget refuses everyone.
func TestThresholds(t *testing.T) {
	c := &clock{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	store := fileStore(t)
	b, logs := newTestBudget(t, c, store, reg)
	add := func(project string, usd float64) {
		t.Helper()
		if err := store.Add(t.Context(), MonthOf(c.t), c.t, map[string]float64{TotalScope: usd, project: usd}); err != nil {
			t.Fatal(err)
		}
	}
	add("alpha", 2.9) // 72.5 % of alpha's $4
	if err := b.Allow(t.Context(), "alpha"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Fatalf("a WARN line below 75 %%: %s", logs)
	}
	add("alpha", 0.2) // 77.5 %
	for range 3 {
		if err := b.Allow(t.Context(), "alpha"); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "sandbox budget at 78 %"); n != 1 {
		t.Fatalf("%d WARN lines at 75 %%, want 1:\n%s", n, logs)
	}
	if got := testutil.ToFloat64(b.metrics.ratio.WithLabelValues("alpha")); math.Abs(got-0.775) > 1e-9 {
		t.Fatalf("gitgate_budget_used_ratio{project=alpha} %v", got)
	}
	add("alpha", 1)
	err := b.Allow(t.Context(), "alpha")
	if backends.CategoryOf(err) != backends.ResourceExhausted {
		t.Fatalf("alpha at 102 %%: %v, want resource_exhausted", err)
	}
	for _, want := range []string{`project "alpha" is spent`, "$4.10 of $4.00", "December 2026", "2027-01-01 00:00 UTC",
		"keep working", "ops@example.com", "budget.projects.alpha.monthly_usd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	if err := b.Allow(t.Context(), "beta"); err != nil {
		t.Fatalf("beta refused for alpha's budget: %v", err)
	}
	if n := strings.Count(logs.String(), "sandbox budget spent"); n != 1 {
		t.Fatalf("%d spent lines, want 1:\n%s", n, logs)
	}
	add("beta", 6) // the total: $10.10 of $10
	for _, p := range []string{"beta", ""} {
		if err := b.Allow(t.Context(), p); backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(err.Error(), "overall") {
			t.Fatalf("project %q past the overall budget: %v", p, err)
		}
	}
	if got := testutil.ToFloat64(b.metrics.refusals.WithLabelValues(TotalScope)); got != 2 {
		t.Fatalf("refusals of _total: %v", got)
	}
	if got := testutil.ToFloat64(b.metrics.refusals.WithLabelValues("alpha")); got != 1 {
		t.Fatalf("refusals of alpha: %v", got)
	}
	if got := testutil.ToFloat64(b.metrics.spent.WithLabelValues("beta")); math.Abs(got-6) > 1e-9 {
		t.Fatalf("gitgate_budget_spent_usd{project=beta} %v", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "gitgate_budget_limit_usd"); n != 2 {
		t.Fatalf("%d limit series, want 2 (_total, alpha: beta has no limit)", n)
	}
	// A new month: the lines come again, once.
	c.t = time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
	add("alpha", 3.5)
	if err := b.Allow(t.Context(), "alpha"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), `sandbox budget at 88 %" scope=alpha month=2027-01`); n != 1 {
		t.Fatalf("%d WARN lines for January's 87.5 %%, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "sandbox budget at"); n != 3 {
		t.Fatalf("%d WARN lines at warn_at, want 3 (alpha in December and January, _total in December)", n)
	}
}

// TestAlertOnly: with action alert a spent budget refuses nothing.
func TestAlertOnly(t *testing.T) {
	c := &clock{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	store := fileStore(t)
	b, err := New(Config{MonthlyUSD: 1, Action: Alert, Store: store, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	_ = store.Add(t.Context(), MonthOf(c.t), c.t, map[string]float64{TotalScope: 5})
	if err := b.Allow(t.Context(), "alpha"); err != nil {
		t.Fatalf("action alert refused: %v", err)
	}
}

// failingStore fails every call after fail is set.
type failingStore struct {
	Store
	fail bool
}

func (f *failingStore) Spent(ctx context.Context, m Month) (Spend, error) {
	if f.fail {
		return Spend{}, errors.New("store down")
	}
	return f.Store.Spent(ctx, m)
}

// TestStoreOutage: while the store cannot be read, the last spend read
// decides; without any, creation is allowed; errors are counted.
func TestStoreOutage(t *testing.T) {
	c := &clock{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	fs := &failingStore{Store: fileStore(t)}
	b, _ := newTestBudget(t, c, fs, nil)
	fs.fail = true
	if err := b.Allow(t.Context(), "alpha"); err != nil {
		t.Fatalf("nothing ever read, store down: %v", err)
	}
	fs.fail = false
	_ = fs.Add(t.Context(), MonthOf(c.t), c.t, map[string]float64{TotalScope: 11})
	_, _ = b.Status(t.Context())
	fs.fail = true
	if err := b.Allow(t.Context(), "alpha"); backends.CategoryOf(err) != backends.ResourceExhausted {
		t.Fatalf("store down after a spent read: %v", err)
	}
	if got := testutil.ToFloat64(b.metrics.storeErrors); got != 2 {
		t.Fatalf("store errors %v, want 2", got)
	}
}
