package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestShadowedReadsMatchAcrossBackends: status served by Approach 1 and
// mirrored to the Approach 2 service on the same (shared) workspace; every
// comparison in the ledger is a match. (The agent waits for each pair's
// comparisons: on a slow machine, more shadows at once than the gateway's
// 8 slots would be skipped, not compared.)
func TestShadowedReadsMatchAcrossBackends(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	_ = f.SetShadow("status", 1)
	_ = f.SetShadow("read_file", 1)
	w, flagPath, _ := newCanaryWorld(t, f)
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "sh", "url": w.repoURL})
	w.ok(t, c, "write_file", map[string]any{"workspace": "sh", "path": "new.txt", "content": "n"})
	for i := range 10 {
		w.ok(t, c, "status", map[string]any{"workspace": "sh"})
		w.ok(t, c, "read_file", map[string]any{"workspace": "sh", "path": "README.md"})
		testkit.Eventually(t, fmt.Sprintf("the comparisons of round %d", i), func() bool { return w.shadowComparisons(t) >= 2*(i+1) })
	}
	ledger := flagPath + ".ledger.jsonl"
	comparisons := waitComparisons(t, ledger, 20)
	if len(comparisons) != 20 {
		t.Fatalf("%d comparisons in the ledger, want 20", len(comparisons))
	}
	for _, e := range comparisons {
		if e.Outcome != "match" || e.Routed != "approach1" || e.Backend != "approach2" {
			t.Fatalf("comparison %+v", e)
		}
	}
}

// TestLedgerInPostgres: with canary.ledger_dsn_env set, the gateway's
// routed calls and shadow comparisons land in PostgreSQL (and no ledger
// file is written).
func TestLedgerInPostgres(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 100)
	_ = f.SetShadow("read_file", 1)
	dsn := backendtest.PostgresDSN(t)
	w, flagPath, _ := newCanaryWorld(t, f, func(c *configs.Config) { c.Canary.LedgerDSN = dsn })
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "pg", "url": w.repoURL})
	for range 5 {
		w.ok(t, c, "status", map[string]any{"workspace": "pg"})
		w.ok(t, c, "read_file", map[string]any{"workspace": "pg", "path": "README.md"})
	}
	store, err := canary.OpenPGStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var status, comparisons []canary.Entry
	testkit.Eventually(t, "the ledger's entries reach PostgreSQL", func() bool {
		status, _ = store.Read(t.Context(), "status", time.Time{})
		all, _ := store.Read(t.Context(), "read_file", time.Time{})
		comparisons = comparisons[:0]
		for _, e := range all {
			if e.Kind == "comparison" {
				comparisons = append(comparisons, e)
			}
		}
		return len(status) >= 5 && len(comparisons) >= 5
	})
	if len(status) != 5 || len(comparisons) != 5 {
		t.Fatalf("PostgreSQL ledger: %d status calls (want 5), %d read_file comparisons (want 5)", len(status), len(comparisons))
	}
	for _, e := range status {
		if e.Kind != "call" || e.Routed != "approach2" || e.Backend != "approach2" || e.Duration <= 0 {
			t.Fatalf("status entry %+v", e)
		}
	}
	if _, err := os.Stat(flagPath + ".ledger.jsonl"); !os.IsNotExist(err) {
		t.Fatalf("a ledger file was written too: %v", err)
	}
}

// TestFullShadowingNeverPushes: with every operation shadowed at 100 %,
// reads are mirrored on the Approach 2 service and writes predicted by it
// (over gRPC, reading the remote with the read-only token), and the remote
// receives exactly the pushes the agent made — each commit once, no branch
// nobody pushed, no receive-pack request with the read-only token. Every
// write prediction matches what Approach 1 did, or is stale (the agent had
// moved on); none is a mismatch. The agent first waits for each call's
// comparison (so that every write can be predicted before the workspace
// moves on, whatever the machine's load), then works on without waiting,
// as agents do, while the shadows run behind it.
func TestFullShadowingNeverPushes(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		_ = f.SetShadow(op, 1)
	}
	w, flagPath, _ := newCanaryWorld(t, f)
	c := w.httpClient(t, agentToken)
	before := w.remoteGit(t, "for-each-ref", "--format=%(refname)")
	pushesBefore := w.remote.Pushes("demo")
	calls := 0
	call := func(tool string, args map[string]any, wait bool) {
		t.Helper()
		w.ok(t, c, tool, args)
		calls++
		if wait {
			testkit.Eventually(t, fmt.Sprintf("the shadow comparison of call %d (%s)", calls, tool), func() bool {
				return w.shadowComparisons(t) >= calls
			})
		}
	}
	call("clone", map[string]any{"workspace": "full", "url": w.repoURL}, true)
	call("checkout", map[string]any{"workspace": "full", "branch": "shadowed", "create": true}, true)
	for i := range 3 {
		wait := i == 0
		call("write_file", map[string]any{"workspace": "full", "path": fmt.Sprintf("s%d.txt", i), "content": "s"}, wait)
		call("status", map[string]any{"workspace": "full"}, wait)
		call("commit", map[string]any{"workspace": "full", "message": fmt.Sprintf("shadowed %d", i)}, wait)
		call("push", map[string]any{"workspace": "full"}, wait)
	}
	comparisons := waitComparisons(t, flagPath+".ledger.jsonl", calls)
	if len(comparisons) != calls {
		t.Fatalf("%d comparisons recorded for %d calls", len(comparisons), calls)
	}
	if got := w.remoteGit(t, "log", "--format=%s", "refs/heads/shadowed"); !strings.HasPrefix(got, "shadowed 2\nshadowed 1\nshadowed 0\n") || strings.Count(got, "shadowed ") != 3 {
		t.Fatalf("remote branch holds:\n%s", got)
	}
	if after := w.remoteGit(t, "for-each-ref", "--format=%(refname)"); after != before+"\nrefs/heads/shadowed" {
		t.Fatalf("remote refs before:\n%safter:\n%s", before, after)
	}
	if n := w.remote.Pushes("demo") - pushesBefore; n != 3 {
		t.Fatalf("%d pushes reached the remote, want the agent's 3", n)
	}
	predicted := map[string]int{}
	for _, e := range comparisons {
		if e.Routed != "approach1" || e.Backend != "approach2" {
			t.Fatalf("comparison %+v", e)
		}
		if e.Op.IsRead() {
			continue
		}
		switch e.Outcome {
		case "match":
			predicted[string(e.Op)]++
		case "stale":
		default:
			t.Fatalf("write comparison %+v", e)
		}
	}
	t.Logf("matching write predictions by operation: %v", predicted)
	for _, op := range []string{"clone", "checkout", "write_file", "commit", "push"} {
		if predicted[op] == 0 {
			t.Errorf("no matching prediction of %s (%v)", op, predicted)
		}
	}
	var readOnly int
	for _, r := range w.remote.Requests() {
		if r.ReadOnly {
			readOnly++
			if strings.Contains(r.Path, "receive-pack") || r.Service == "git-receive-pack" {
				t.Fatalf("a shadow asked to push: %+v", r)
			}
		}
	}
	if readOnly == 0 {
		t.Fatal("no shadow read the remote with the read-only token")
	}
}

// TestLedgerDatabaseDownServesAnyway: with the ledger's PostgreSQL
// unreachable, the gateway starts, serves routed calls, counts the batches
// it could not write, and logs no DSN password.
func TestLedgerDatabaseDownServesAnyway(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 100)
	const password = "ledger-pw-9d2e"
	w, _, _ := newCanaryWorld(t, f, func(c *configs.Config) {
		c.Canary.LedgerDSN = "postgres://gitgate:" + password + "@127.0.0.1:1/ledger?sslmode=disable&connect_timeout=1"
	})
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "down", "url": w.repoURL})
	for range 5 {
		if got := w.ok(t, c, "status", map[string]any{"workspace": "down"})["backend"]; got != "approach2" {
			t.Fatalf("status served by %v", got)
		}
	}
	var failed string
	testkit.Eventually(t, "a ledger batch fails to be written", func() bool {
		failed = w.metric(t, "gitgate_ledger_write_errors_total")
		return failed != "" && failed != "0"
	})
	if failed == "" || failed == "0" {
		t.Fatalf("gitgate_ledger_write_errors_total = %q with the database down", failed)
	}
	if logs := w.logs.String(); strings.Contains(logs, password) || !strings.Contains(logs, "ledger") {
		t.Fatalf("logs show the password or say nothing of the ledger:\n%s", logs)
	}
}

// waitComparisons waits until the ledger file holds at least n shadow
// comparisons (they are recorded after the calls returned) and returns them.
func waitComparisons(t *testing.T, ledger string, n int) []canary.Entry {
	t.Helper()
	var comparisons []canary.Entry
	testkit.Eventually(t, fmt.Sprintf("%d comparisons are in the ledger", n), func() bool {
		entries, _ := canary.ReadFile(ledger, time.Time{})
		comparisons = comparisons[:0]
		for _, e := range entries {
			if e.Kind == "comparison" {
				comparisons = append(comparisons, e)
			}
		}
		return len(comparisons) >= n
	})
	return comparisons
}

// shadowComparisons is how many shadow comparisons the gateway has made
// (of any operation and outcome), from its metrics.
func (w *world) shadowComparisons(t *testing.T) int {
	t.Helper()
	_, body := get(t, w.adminURL+"/metrics")
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "gitgate_shadow_comparisons_total{") {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			n += int(v)
		}
	}
	return n
}
