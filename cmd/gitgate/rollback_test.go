package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// noAutomaticRollback sets floors no difference can exceed, so that the
// gateway's automatic rollback never fires (a test that takes Approach 2
// down on purpose).
func noAutomaticRollback(c *configs.Config) {
	c.Canary.Judge.ErrorFloor.Abs = 1
	c.Canary.Judge.LatencyFloor.Abs = 24 * time.Hour
	c.Canary.Judge.MaxMismatchRate = 0.999999
}

// slowProxy forwards TCP connections on a loopback port to target,
// holding each chunk the client sends for delay: a network that makes the
// service behind it slower by about delay per call. It stops when the
// test ends.
func slowProxy(t testing.TB, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			track(in)
			track(out)
			wg.Go(func() { // the service's answers, at once
				_, _ = io.Copy(in, out)
				in.Close()
			})
			wg.Go(func() { // the client's requests, each chunk late
				buf := make([]byte, 64<<10)
				for {
					n, err := in.Read(buf)
					if n > 0 {
						<-time.After(delay) // the simulated network's latency, not a wait for a condition
						if _, werr := out.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				out.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestAutomaticRollback: at 50 %, an Approach 2 that fails 20% of pushes
// where Approach 1 fails 1 % is rolled back to 0% by the gateway within a
// few hundred Approach 2 pushes, with the judge's reasons (both rates) in
// the flag change log and the ledger; later pushes go to Approach 1.
func TestAutomaticRollback(t *testing.T) {
	dir := t.TempDir()
	flagPath := filepath.Join(dir, "flags.json")
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("push", 50)
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	ev, err := flags.Open(t.Context(), flags.Config{Path: flagPath, Ops: backends.OpNames(), Domain: t.Name(), Logger: quiet, CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	ledgerPath := filepath.Join(dir, "ledger.jsonl")
	rec := canary.NewRecorder(canary.RecorderConfig{Store: canary.NewFileStore(ledgerPath), Ledger: canary.LedgerConfig{FlushEvery: 10 * time.Millisecond},
		Rollback: canary.RollbackConfig{Apply: flags.AutomaticRollback(flagPath, backends.OpNames(), changeLogLockWait)},
		Redact:   func(s string) string { return s }, Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	go rec.Run(ctx)
	var pushes, pushes1 atomic.Int64
	a2 := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		if pushes.Add(1)%5 == 0 {
			return nil, backends.Errorf(backends.Unavailable, "approach2 push failed")
		}
		return backends.NewResult(req.Op()), nil
	})
	a1 := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		if pushes1.Add(1)%100 == 0 {
			return nil, backends.Errorf(backends.Unavailable, "approach1 push failed")
		}
		return backends.NewResult(req.Op()), nil
	})
	r, err := gateway.NewRouter(gateway.RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": a1, "approach2": a2},
		Default: "approach1", Flags: ev, Observe: rec.Record, Registerer: prometheus.NewRegistry(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	push := func(i int) (backends.Result, error) {
		req := &backends.PushRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: fmt.Sprintf("w%d", i%200)}}
		return r.Execute(t.Context(), req)
	}
	start := time.Now()
	rolledBack := func() bool {
		g, err := flags.Load(flagPath)
		return err == nil && g.Route("push") == 0
	}
	// Push (as agents keep doing) until the gateway has rolled push back in
	// the flag file; the rollback runs beside the calls, not in them.
	n := 0
	testkit.Eventually(t, "push is rolled back in the flag file", func() bool {
		for range 10 {
			_, _ = push(n)
			n++
		}
		return rolledBack()
	})
	t.Logf("rolled back after %s, %d pushes on approach2 and %d on approach1", time.Since(start), pushes.Load(), pushes1.Load())
	if pushes.Load() > 500 {
		t.Errorf("rolled back only after %d approach2 pushes", pushes.Load())
	}
	// The change record is written with the flag file, never after it.
	changes, _ := os.ReadFile(flagPath + ".changes.jsonl")
	if !strings.Contains(string(changes), "gitgate (automatic rollback)") ||
		!regexp.MustCompile(`at the 50% stage: approach2 error rate \d+\.\d\d% \(\d+ of \d+; at least [^)]*\) exceeds approach1's \d\.\d\d%`).Match(changes) {
		t.Fatalf("change log: %s", changes)
	}
	testkit.Eventually(t, "the evaluator reads the rolled-back file", func() bool {
		return ev.Decide(t.Context(), "push", "p/w0").Backend == flags.Approach1
	})
	for i := range 5 {
		if res, err := push(i); err != nil || res.GetServed().Backend != "approach1" {
			t.Fatalf("after the rollback push went to %+v (%v)", res, err)
		}
	}
	cancel()
	rec.Wait()
	entries, err := canary.ReadFile(ledgerPath, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Kind == "rollback" && e.Op == "push" && strings.Contains(e.Detail, "exceeds approach1's"))
	}
	if !found {
		t.Fatalf("no rollback entry among %d ledger entries", len(entries))
	}
}
