package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
)

// gitgate dev ledger writes the scenario's simulated ledger as JSON lines
// the ledger reader reads back, in time order, the same for the same seed
// and end, with the scenario's failing pushes in it.
//
// Two agents (about 19,000 lines, at most two calls in flight) overlap,
// so the time order is checked across agents; four (47,000 lines) cost
// 2.5 times as much under -race and check nothing more.
func TestDevLedger(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.jsonl")
	args := []string{"dev", "ledger", "--scenario", "push-failures", "--weeks", "1", "--agents", "2", "--seed", "7", "--end", "2026-11-30T00:00:00Z", "--out", path}
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "wrote "+path+": ") || !strings.Contains(out, "from 2026-11-23T00:00:00Z to 2026-11-30T00:00:00Z") || !strings.Contains(out, "gitgate report --ledger "+path) {
		t.Errorf("printed %q", out)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	es, err := canary.ReadFile(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(first, []byte("\n")); n != len(es) || n < 10_000 {
		t.Fatalf("%d lines, %d read back; want the same, over 10,000", n, len(es))
	}
	a2Push, a2PushFailed := 0, 0
	for i, e := range es {
		if i > 0 && e.At.Before(es[i-1].At) {
			t.Fatalf("line %d at %s comes before line %d at %s", i+1, e.At, i, es[i-1].At)
		}
		if e.Kind == canary.KindCall && e.Op == backends.OpPush && e.Routed == backends.Approach2 {
			a2Push++
			if e.Failed() {
				a2PushFailed++
			}
		}
	}
	if a2Push == 0 || float64(a2PushFailed)/float64(a2Push) < 0.1 {
		t.Errorf("%d of %d approach2 pushes failed; the scenario fails 20 %%", a2PushFailed, a2Push)
	}
	if _, err := runCLI(t, args...); err != nil {
		t.Fatal(err)
	}
	if again, err := os.ReadFile(path); err != nil || !bytes.Equal(first, again) {
		t.Errorf("a second run with the same seed and end wrote another ledger (%v)", err)
	}
}

func TestDevLedgerArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "l.jsonl")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "push-failure", "--out", out}, `--scenario: "push-failure" is not one of healthy, push-failures, clone-slow, commit-mismatch, cost, thin, a1-slow, a1-busy`},
		{[]string{"--scenario", "thin"}, "--out: the file to write is required"},
		{[]string{"--agents", "0", "--out", out}, "--agents (0) and --weeks (4) must be at least 1"},
		{[]string{"--scenario", "a1-slow", "--weeks", "2", "--out", out}, "scenario a1-slow: needs at least 3 weeks"},
		{[]string{"--end", "yesterday", "--out", out}, `--end: "yesterday" is not an RFC 3339 time`},
	} {
		got, err := runCLI(t, append([]string{"dev", "ledger"}, c.args...)...)
		if err == nil || !strings.Contains(got, c.want) {
			t.Errorf("dev ledger %v: %v, printed %q; want an error saying %q", c.args, err, got, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused command wrote its file")
	}
}
