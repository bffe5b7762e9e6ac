package main

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestGatewayRollsUpAndPrunesTheLedger: with the ledger in PostgreSQL and
// a raw retention of a day, a gateway rolls up the ledger's complete hours
// and deletes the rolled-up raw rows older than a day; what they said is
// still read back through the roll-up, and the rollback records stay.
func TestGatewayRollsUpAndPrunesTheLedger(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	store, err := canary.OpenPGStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	old := time.Now().UTC().Add(-8 * 24 * time.Hour).Truncate(time.Hour)
	var es []canary.Entry
	for i := range 120 {
		es = append(es, canary.Entry{At: old.Add(time.Duration(i) * time.Second), Kind: canary.KindCall, Op: backends.OpStatus, Stage: 10,
			Routed: backends.Approach1, Backend: backends.Approach1, Duration: 20 * time.Millisecond})
	}
	es = append(es, canary.Entry{At: old.Add(time.Hour), Kind: canary.KindRollback, Op: backends.OpStatus, Detail: "an old rollback"})
	if err := store.Append(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	newCanaryWorld(t, flags.NewFile(backends.OpNames()), func(c *configs.Config) {
		c.Canary.LedgerDSN, c.Canary.LedgerRawRetention = dsn, 24*time.Hour
	})
	testkit.Eventually(t, "the gateway deletes the old raw rows once rolled up", func() bool {
		got, err := store.Read(t.Context(), "status", old.Add(-time.Hour))
		if err != nil {
			return false
		}
		for _, e := range got {
			if e.Kind == canary.KindCall && e.At.Before(old.Add(2*time.Hour)) {
				return false
			}
		}
		return len(got) > 0 // the rollback is kept
	})
	src, err := canary.OpenPGSource(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var calls int64
	if err := src.Cells(t.Context(), old, old.Add(2*time.Hour), func(k canary.Key, c *canary.Cell) error {
		if k.Op == backends.OpStatus && c.Calls != nil {
			calls += c.Calls.N
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if calls != 120 {
		t.Fatalf("the roll-up holds %d of the 120 pruned calls", calls)
	}
}
