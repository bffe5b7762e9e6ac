package budget

import (
	"context"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
)

// stores returns each store on a fresh namespace: the file store in a
// temporary directory, Redis under a test prefix, PostgreSQL in a schema
// of its own.
func stores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"file": func(t *testing.T) Store {
			s, err := OpenFileStore(filepath.Join(t.TempDir(), "state", "budget.json"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"redis": func(t *testing.T) Store {
			c := backendtest.Redis(t)
			return NewRedisStore(c, backendtest.RedisPrefix(t, c))
		},
		"postgres": func(t *testing.T) Store {
			s, err := OpenPGStore(t.Context(), backendtest.PostgresDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

// TestStores: each store keeps marks forward-only and sticky once ended,
// adds spend by month and scope, keeps a month's earliest charge, and
// (TestStoresShareCharges) never charges a second twice.
func TestStores(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
			m, err := s.Advance(ctx, "sb-1", t0, false)
			if err != nil || !m.Until.IsZero() || m.Ended {
				t.Fatalf("first Advance: %+v, %v; want no mark", m, err)
			}
			if m, err = s.Advance(ctx, "sb-1", t0.Add(time.Minute), false); err != nil || !m.Until.Equal(t0) {
				t.Fatalf("second Advance returned %+v, %v; want the mark at %v", m, err, t0)
			}
			if m, err = s.Advance(ctx, "sb-1", t0, false); err != nil || !m.Until.Equal(t0.Add(time.Minute)) {
				t.Fatalf("an earlier Advance returned %+v, %v", m, err)
			}
			if m, err = s.Advance(ctx, "sb-1", t0.Add(2*time.Minute), true); err != nil || !m.Until.Equal(t0.Add(time.Minute)) || m.Ended {
				t.Fatalf("ending Advance returned %+v, %v; the mark must not have gone back", m, err)
			}
			if m, err = s.Advance(ctx, "sb-1", t0.Add(time.Hour), false); err != nil || !m.Ended || !m.Until.Equal(t0.Add(2*time.Minute)) {
				t.Fatalf("Advance after the end: %+v, %v; want ended at +2m", m, err)
			}
			if m, _ = s.Advance(ctx, "sb-1", t0.Add(2*time.Hour), false); !m.Until.Equal(t0.Add(2 * time.Minute)) {
				t.Fatalf("an ended mark moved: %+v", m)
			}
			month := MonthOf(t0)
			if sp, err := s.Spent(ctx, month); err != nil || len(sp.ByScope) != 0 || !sp.Since.IsZero() {
				t.Fatalf("empty month: %+v, %v", sp, err)
			}
			for _, add := range []struct {
				at  time.Time
				amt map[string]float64
			}{
				{t0, map[string]float64{TotalScope: 1.5, "alpha": 1.5}},
				{t0.Add(-time.Hour), map[string]float64{TotalScope: 0.25}},
				{t0.Add(time.Hour), map[string]float64{TotalScope: 2, "beta": 2}},
			} {
				if err := s.Add(ctx, month, add.at, add.amt); err != nil {
					t.Fatal(err)
				}
			}
			sp, err := s.Spent(ctx, month)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{TotalScope: 3.75, "alpha": 1.5, "beta": 2}
			for k, v := range want {
				if math.Abs(sp.ByScope[k]-v) > 1e-9 {
					t.Errorf("spend of %s: %v, want %v (all: %v)", k, sp.ByScope[k], v, sp.ByScope)
				}
			}
			if name != "redis" && !sp.Since.Equal(t0.Add(-time.Hour)) { // Redis keeps the first charge written
				t.Errorf("since %v, want the earliest charge %v", sp.Since, t0.Add(-time.Hour))
			}
			if sp.Since.IsZero() {
				t.Error("since not kept")
			}
			if other, _ := s.Spent(ctx, "2026-11"); len(other.ByScope) != 0 {
				t.Errorf("another month has spend: %v", other.ByScope)
			}
		})
	}
}

// TestStoresShareCharges: two budgets (two gateways) charging the same
// sandbox at once, each up to its own clock's now, charge its life once.
func TestStoresShareCharges(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
			var wg sync.WaitGroup
			for g := range 2 {
				b, err := New(Config{Store: s, MonthlyUSD: 10})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					for i := range 20 {
						c := Charge{Sandbox: "shared", Project: "alpha", From: t0, Until: t0.Add(time.Duration(i*2+g) * time.Second), PerSecond: 0.01}
						if _, err := b.Charge(context.Background(), c); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			sp, err := s.Spent(t.Context(), MonthOf(t0))
			if err != nil {
				t.Fatal(err)
			}
			// The latest until is 39 s after t0: $0.39, whoever charged what.
			if got := sp.ByScope[TotalScope]; math.Abs(got-0.39) > 1e-9 || math.Abs(sp.ByScope["alpha"]-0.39) > 1e-9 {
				t.Fatalf("charged $%v (alpha $%v), want $0.39 once", got, sp.ByScope["alpha"])
			}
		})
	}
}
