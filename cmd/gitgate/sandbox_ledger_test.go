package main

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
)

// TestSandboxEndsReachTheLedger: a sandbox of the gateway's Approach 1
// that its manager ends is recorded in the canary ledger (KindSandbox,
// approach1, its life), for the decision framework's monthly cost.
func TestSandboxEndsReachTheLedger(t *testing.T) {
	w, flagPath, _ := newCanaryWorld(t, flags.NewFile(backends.OpNames()))
	ctx := t.Context()
	info, release, err := w.app.sandboxes.Acquire(ctx, sandbox.Owner{Project: "alpha", Agent: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	w.app.sandboxes.Forget(ctx, info.ID) // ends it: its provider destroys it
	w.stopHTTP()                         // the ledger's last entries are written
	entries, err := canary.ReadFile(canary.LedgerPath(flagPath), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == canary.KindSandbox {
			if e.Backend != backends.Approach1 || e.Duration <= 0 || e.Stage != -1 {
				t.Fatalf("sandbox entry %+v", e)
			}
			return
		}
	}
	t.Fatalf("no sandbox entry among the ledger's %d entries", len(entries))
}
