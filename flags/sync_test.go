package flags

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
	"google.golang.org/grpc"
)

// syncSource serves the flag file at path as a flagd sync source on a
// loopback port (the real SyncServer over real gRPC) and returns its
// address and a function that stops it.
func syncSource(t testing.TB, path, addr string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewSyncServer(path, ops, slog.New(slog.DiscardHandler))
	go srv.Watch(ctx, 20*time.Millisecond)
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			g.Stop()
		}
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func openSync(t testing.TB, addr string) *Evaluator {
	t.Helper()
	e, err := Open(t.Context(), Config{SyncAddr: addr, Ops: ops, Domain: t.Name(), Logger: slog.New(slog.DiscardHandler),
		CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestSyncSourceDrivesRouting: a gateway following a sync source routes by
// its flags (sticky 10 % stage), applies a change (how soon is measured by
// BenchmarkChangeApplies), goes to Approach 1 while the source is down or
// serving an invalid file, and follows the source again once it is back.
func TestSyncSourceDrivesRouting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	addr, stop := syncSource(t, path, "127.0.0.1:0")
	e := openSync(t, addr)
	testkit.Eventually(t, "the source's flags apply", func() bool { return e.Decide(t.Context(), "status", "p/w").FailSafe == "" })
	if s := share(routes(t, e, "status", 10000)); s < 0.09 || s > 0.11 {
		t.Fatalf("10%% stage from the sync source sends %.2f%% to approach2", 100*s)
	}

	_ = f.SetRoute("push", 100)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	took := testkit.Eventually(t, "the change applies", func() bool { return e.Decide(t.Context(), "push", "p/w").Backend == Approach2 })
	t.Logf("the change applied in %s", took.Round(time.Millisecond))

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "an invalid file sends everything to Approach 1", func() bool {
		d := e.Decide(t.Context(), "push", "p/w")
		return d.Backend == Approach1 && strings.HasPrefix(d.FailSafe, "sync: ")
	})
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the fixed file applies again", func() bool { return e.Decide(t.Context(), "push", "p/w").Backend == Approach2 })

	stop()
	testkit.Eventually(t, "a source that went away sends everything to Approach 1", func() bool {
		d := e.Decide(t.Context(), "push", "p/w")
		return d.Backend == Approach1 && strings.HasPrefix(d.FailSafe, "sync: ")
	})
	if err := e.SetOverride(Override{Kill: true, By: "test", Reason: "drill"}); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(t.Context(), "push", "p/w"); !d.Killed {
		t.Fatalf("the kill override does not work with the source down: %+v", d)
	}
	_ = e.ClearOverride("test", "drill over")
	syncSource(t, path, addr) // back on the same address
	testkit.Eventually(t, "the source's flags apply after it came back", func() bool { return e.Decide(t.Context(), "push", "p/w").Backend == Approach2 })
}

// TestSyncSourceDownAtStart: a gateway whose source is unreachable when it
// starts sends everything to Approach 1, and follows the source once it
// comes up.
func TestSyncSourceDownAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(ops)
	_ = f.SetRoute("status", 100)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := openSync(t, addr)
	for range 20 {
		if d := e.Decide(t.Context(), "status", "p/w"); d.Backend != Approach1 || d.FailSafe == "" {
			t.Fatalf("decision with the source down: %+v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	syncSource(t, path, addr)
	testkit.Eventually(t, "the source's flags apply once it is up", func() bool { return e.Decide(t.Context(), "status", "p/w").Backend == Approach2 })
}

// TestLocalRollbackLastsUntilTheSourceChangesTheRoute: with a sync source
// the gateway cannot edit the flags, so an automatic rollback holds the
// operation on Approach 1 locally until an operator changes its route at
// the source; other operations follow the source meanwhile.
func TestLocalRollbackLastsUntilTheSourceChangesTheRoute(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(ops)
	_ = f.SetRoute("status", 100)
	_ = f.SetRoute("push", 100)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	addr, _ := syncSource(t, path, "127.0.0.1:0")
	e := openSync(t, addr)
	testkit.Eventually(t, "the source's flags apply", func() bool { return e.Decide(t.Context(), "push", "p/w").Backend == Approach2 })
	if err := e.RollBackLocally("push", "error rate 20% > 5%"); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(t.Context(), "push", "p/w"); d.Backend != Approach1 || !d.RolledBack {
		t.Fatalf("rolled-back push: %+v", d)
	}
	_ = f.SetShadow("status", 0.5) // a change that does not touch push's route
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the unrelated change applies", func() bool { return e.Decide(t.Context(), "status", "p/w").ShadowRate == 0.5 })
	if d := e.Decide(t.Context(), "push", "p/w"); !d.RolledBack {
		t.Fatalf("an unrelated change ended the rollback: %+v", d)
	}
	if d := e.Decide(t.Context(), "status", "p/w"); d.Backend != Approach2 {
		t.Fatalf("status stopped following the source: %+v", d)
	}
	_ = f.SetRoute("push", 10) // the operator acts on push at the source
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "push follows the source again", func() bool { return !e.Decide(t.Context(), "push", "p/w").RolledBack })
}
