package canary

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// blockingStore blocks every Append until released.
type blockingStore struct{ release chan struct{} }

func (s blockingStore) Append(context.Context, []Entry) error { <-s.release; return nil }

// TestLedgerNeverBlocksTheCaller: with the store stuck and the buffer full,
// Record returns at once and counts what it drops.
func TestLedgerNeverBlocksTheCaller(t *testing.T) {
	store := blockingStore{release: make(chan struct{})}
	l := NewLedger(store, LedgerConfig{Buffer: 4, FlushEvery: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for range 10000 {
			l.Record(Entry{Kind: KindCall, Op: backends.OpStatus})
		}
	}()
	select { // a blocked caller never returns: any generous bound tells
	case <-recorded:
	case <-time.After(time.Minute):
		t.Fatal("recording 10,000 entries with a stuck store blocked the caller")
	}
	if testutil.ToFloat64(l.dropped) == 0 {
		t.Fatal("nothing was counted as dropped although the store was stuck")
	}
	close(store.release)
	cancel()
	l.Wait()
}

func TestFileStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := NewLedger(NewFileStore(path), LedgerConfig{FlushEvery: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	at := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	for i := range 3 {
		l.Record(Entry{At: at.Add(time.Duration(i) * time.Minute), Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2, Backend: backends.Approach1, FellBack: true})
	}
	cancel()
	l.Wait()
	got, err := ReadFile(path, at.Add(time.Minute))
	if err != nil || len(got) != 2 || !got[0].FellBack || got[1].At != at.Add(2*time.Minute) {
		t.Fatalf("read back %+v %v", got, err)
	}
}

type applied struct {
	mu      sync.Mutex
	reasons map[string][]string
}

func (a *applied) apply(op, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reasons[op] = append(a.reasons[op], reason)
	return nil
}

func (a *applied) get(op string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reasons[op]...)
}

func newWatcher(a *applied) *Rollback {
	return NewRollback(RollbackConfig{Apply: a.apply, Logger: slog.New(slog.DiscardHandler)})
}

// clock hands out call times one millisecond apart.
type clock struct{ at time.Time }

func newClock() *clock { return &clock{at: time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)} }

func (c *clock) next() time.Time {
	c.at = c.at.Add(time.Millisecond)
	return c.at
}

// call is a call of op at stage, routed to routed, failed (unavailable)
// when fail is set.
func call(at time.Time, op backends.Op, stage int, routed backends.Name, d time.Duration, fail bool) Entry {
	e := Entry{At: at, Kind: KindCall, Op: op, Stage: stage, Routed: routed, Backend: routed, Duration: d}
	if fail {
		e.Category = backends.Unavailable
	}
	return e
}

// slow draws a duration whose P95 is above 2 s: log-normal around 1 s.
func slow(rng *rand.Rand) time.Duration {
	return time.Duration(math.Exp(rng.NormFloat64()*0.7) * float64(time.Second))
}

// TestNoRollbackWhenAsSlowAsApproach1: Approach 2 exactly as slow as
// Approach 1 (the same distribution, P95 above 2 s) and as reliable (1 %
// failures) over thousands of calls at 50 %: no rollback. The old watcher
// rolled back on an absolute P95 of 2 s.
func TestNoRollbackWhenAsSlowAsApproach1(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	rng := rand.New(rand.NewPCG(1, 2))
	c := newClock()
	var a2 []time.Duration
	for range 6000 {
		routed := backends.Approach1
		if rng.IntN(2) == 0 {
			routed = backends.Approach2
		}
		d := slow(rng)
		if routed == backends.Approach2 {
			a2 = append(a2, d)
		}
		r.Observe(call(c.next(), backends.OpPush, 50, routed, d, rng.IntN(100) == 0))
	}
	r.Wait()
	if p95 := testkit.Percentile(a2, 95); p95 <= 2*time.Second {
		t.Fatalf("the test's Approach 2 P95 is %s, not above 2 s", p95)
	}
	if got := a.get("push"); len(got) != 0 {
		t.Fatalf("rolled back an approach2 as slow as approach1: %q", got)
	}
}

// TestAAWatcherFalseAlarms: 100 canaries where both backends are drawn
// from the same distributions (1 % failures, slow calls), 2,000 calls each
// at 10 % or 50 %, each looked at as the watcher looks: at most the
// configured false-alarm rate (1 %) of them, 1, may roll back (the seeds
// are fixed; the count is logged).
func TestAAWatcherFalseAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("100 simulated canaries")
	}
	rolledBack := 0
	for i := range 100 {
		a := &applied{reasons: map[string][]string{}}
		r := newWatcher(a)
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		c := newClock()
		stage := []int{10, 50}[i%2]
		for range 2000 {
			routed := backends.Approach1
			if rng.IntN(100) < stage {
				routed = backends.Approach2
			}
			r.Observe(call(c.next(), backends.OpPush, stage, routed, slow(rng), rng.IntN(100) == 0))
		}
		r.Wait()
		if len(a.get("push")) > 0 {
			rolledBack++
			t.Logf("canary %d rolled back: %q", i, a.get("push"))
		}
	}
	t.Logf("%d of 100 A/A canaries rolled back (false-alarm rate 1 %%)", rolledBack)
	if rolledBack > 1 {
		t.Fatalf("%d of 100 A/A canaries rolled back: more than the 1 %% false-alarm rate allows", rolledBack)
	}
}

// TestRollbackOnErrorRate: Approach 2 failing 20 % with Approach 1 at 1 %
// is rolled back within a few hundred Approach 2 calls, and the reason
// names both rates.
func TestRollbackOnErrorRate(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	rng := rand.New(rand.NewPCG(3, 4))
	c := newClock()
	n2 := 0
	for n2 < 5000 && len(a.get("push")) == 0 {
		routed, fail := backends.Approach1, rng.IntN(100) == 0
		if rng.IntN(10) == 0 { // the 10 % stage
			routed, fail = backends.Approach2, rng.IntN(5) == 0
			n2++
		}
		r.Observe(call(c.next(), backends.OpPush, 10, routed, 10*time.Millisecond, fail))
		r.Wait()
	}
	got := a.get("push")
	t.Logf("rolled back after %d approach2 calls: %q", n2, got)
	if len(got) != 1 || n2 > 400 {
		t.Fatalf("%d rollbacks after %d approach2 calls: %q", len(got), n2, got)
	}
	if !regexp.MustCompile(`^at the 10% stage: approach2 error rate (1\d|2\d)\.\d\d% \(\d+ of \d+; at least \d+\.\d\d%\) exceeds approach1's [0-2]\.\d\d% `).MatchString(got[0]) {
		t.Fatalf("reason %q does not name the two rates", got[0])
	}
}

// TestRollbackOnLatency: Approach 2 taking 3 s where Approach 1 takes
// 100 ms is rolled back, and the reason names the quantiles.
func TestRollbackOnLatency(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	c := newClock()
	for i := range 2000 {
		if len(a.get("clone")) > 0 {
			break
		}
		routed, d := backends.Approach1, 100*time.Millisecond
		if i%2 == 0 {
			routed, d = backends.Approach2, 3*time.Second
		}
		r.Observe(call(c.next(), backends.OpClone, 50, routed, d, false))
		r.Wait()
	}
	if got := a.get("clone"); len(got) != 1 || !strings.Contains(got[0], "approach2 P50 latency 3.0") || !strings.Contains(got[0], "exceeds approach1's 100.") {
		t.Fatalf("rollbacks %q", got)
	}
}

// TestStageChangeRestartsTheSummaries: evidence of one stage does not
// carry into the next; a late call of the stage before is ignored; at
// 100 % Approach 1's calls of the stages before are the baseline.
func TestStageChangeRestartsTheSummaries(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	c := newClock()
	op := backends.OpCommit
	// Three failed Approach 2 calls against 500 clean Approach 1 calls
	// prove a regression (see the last step); two do not.
	for range 500 {
		r.Observe(call(c.next(), op, 10, backends.Approach1, 10*time.Millisecond, false))
	}
	lateAt := c.next() // a call of the 10 % stage that begins now and ends late
	r.Observe(call(c.next(), op, 10, backends.Approach2, 10*time.Millisecond, true))
	r.Observe(call(c.next(), op, 10, backends.Approach2, 10*time.Millisecond, true))
	// The 50 % stage: 500 clean Approach 1 calls, one failed Approach 2 call.
	for range 500 {
		r.Observe(call(c.next(), op, 50, backends.Approach1, 10*time.Millisecond, false))
	}
	r.Observe(call(c.next(), op, 50, backends.Approach2, 10*time.Millisecond, true))
	r.Observe(call(lateAt, op, 10, backends.Approach2, 10*time.Millisecond, true))
	r.Observe(call(lateAt, op, 10, backends.Approach2, 10*time.Millisecond, true))
	r.Wait()
	if got := a.get(string(op)); len(got) != 0 {
		t.Fatalf("the 10%% stage's failures counted in the 50%% stage: %q", got)
	}
	// At 100 %: three failures against the 10 % and 50 % stages' Approach 1.
	for range 3 {
		r.Observe(call(c.next(), op, 100, backends.Approach2, 10*time.Millisecond, true))
	}
	r.Wait()
	got := a.get(string(op))
	if len(got) != 1 || !strings.HasPrefix(got[0], "at the 100% stage: approach2 error rate 100.00% (3 of 3;") || !strings.Contains(got[0], "approach1's 0.00% (0 of 1000;") {
		t.Fatalf("rollbacks at 100%% against the baseline of the stages before: %q", got)
	}
}

// TestProvenMismatchesRollBack: a shadow mismatch rate shown to be above
// the limit (5 % of comparisons against 1 %) rolls the operation back,
// with an example of the mismatch; stale comparisons compare nothing.
func TestProvenMismatchesRollBack(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	c := newClock()
	for i := range 5000 {
		if len(a.get("status")) > 0 {
			break
		}
		routed := backends.Approach1
		if i%2 == 0 {
			routed = backends.Approach2
		}
		r.Observe(call(c.next(), backends.OpStatus, 50, routed, 10*time.Millisecond, false))
		outcome := OutcomeMatch
		switch {
		case i%20 == 0:
			outcome = OutcomeMismatch
		case i%3 == 0:
			outcome = OutcomeStale
		}
		r.Observe(Entry{At: c.next(), Kind: KindComparison, Op: backends.OpStatus, Stage: 50, Routed: routed, Outcome: outcome, Detail: "branch: primary \"main\" / shadow \"dev\""})
		r.Wait()
	}
	got := a.get("status")
	if len(got) != 1 || !strings.Contains(got[0], "shadow mismatch rate") || !strings.Contains(got[0], `for example: branch: primary "main" / shadow "dev"`) {
		t.Fatalf("rollbacks %q", got)
	}
}

// TestNoSecondRollbackWhilePending: while a rollback is being applied,
// further bad calls start none; after it, the calls still routed at the
// rolled-back stage (the flags not yet read again) are no evidence either;
// once calls of another stage came, the stage set again is judged afresh.
func TestNoSecondRollbackWhilePending(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var reasons []string
	r := NewRollback(RollbackConfig{Logger: slog.New(slog.DiscardHandler), Apply: func(_, reason string) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
		return nil
	}})
	c := newClock()
	for range 500 {
		r.Observe(call(c.next(), backends.OpPush, 50, backends.Approach1, 10*time.Millisecond, false))
	}
	for range 20 {
		r.Observe(call(c.next(), backends.OpPush, 50, backends.Approach2, 10*time.Millisecond, true))
	}
	close(release)
	r.Wait()
	for range 500 {
		r.Observe(call(c.next(), backends.OpPush, 50, backends.Approach1, 10*time.Millisecond, false))
	}
	for range 2 { // not enough on their own
		r.Observe(call(c.next(), backends.OpPush, 50, backends.Approach2, 10*time.Millisecond, true))
	}
	r.Wait()
	mu.Lock()
	if len(reasons) != 1 || len(r.Applied()) != 1 {
		t.Fatalf("rollbacks %q, applied %v", reasons, r.Applied())
	}
	mu.Unlock()
	r.Observe(call(c.next(), backends.OpPush, 0, backends.Approach1, 10*time.Millisecond, false)) // the flags were read again
	for range 500 {
		r.Observe(call(c.next(), backends.OpPush, 50, backends.Approach1, 10*time.Millisecond, false))
	}
	for range 3 {
		r.Observe(call(c.next(), backends.OpPush, 50, backends.Approach2, 10*time.Millisecond, true))
	}
	r.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 2 {
		t.Fatalf("the 50%% stage set again and failing: rollbacks %q", reasons)
	}
}

func TestNoRollbackOnApproach1OrClientMistakes(t *testing.T) {
	a := &applied{reasons: map[string][]string{}}
	r := newWatcher(a)
	c := newClock()
	for i := range 2000 {
		r.Observe(call(c.next(), backends.OpCommit, 0, backends.Approach1, 10*time.Millisecond, i%2 == 0))
		e := call(c.next(), backends.OpStatus, 50, backends.Approach1, 10*time.Millisecond, false)
		if i%2 == 0 {
			e.Routed, e.Backend, e.Category = backends.Approach2, backends.Approach2, backends.InvalidArgument
		}
		r.Observe(e)
	}
	r.Wait()
	if got := a.get("commit"); len(got) != 0 {
		t.Fatalf("rolled back an operation on approach1: %q", got)
	}
	if got := a.get("status"); len(got) != 0 {
		t.Fatalf("client mistakes counted against approach2: %q", got)
	}
}

// BenchmarkRollbackObserve: what the automatic rollback adds to a call,
// at 50 % with both backends drawn from one distribution: the summaries
// and, for an Approach 2 call, a look by the judge (every call for the
// first everyLookUpTo, then fewer).
func BenchmarkRollbackObserve(b *testing.B) {
	r := NewRollback(RollbackConfig{Apply: func(string, string) error { return nil }, Logger: slog.New(slog.DiscardHandler)})
	rng := rand.New(rand.NewPCG(5, 6))
	c := newClock()
	for b.Loop() {
		routed := backends.Approach1
		if rng.IntN(2) == 0 {
			routed = backends.Approach2
		}
		r.Observe(call(c.next(), backends.OpStatus, 50, routed, slow(rng), rng.IntN(100) == 0))
	}
	r.Wait()
}

// TestSeededBaselineJudgesARestartAt100: a watcher started while push is
// at 100 % sees no Approach 1 calls; seeded with Approach 1's calls from
// the ledger (Baselines) it rolls Approach 2's 20 % failures back, and
// without them it cannot.
func TestSeededBaselineJudgesARestartAt100(t *testing.T) {
	before := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var history Entries
	for i := range 3000 {
		history = append(history, call(before.Add(time.Duration(i)*time.Second), backends.OpPush, 50, backends.Approach1, 10*time.Millisecond, i%100 == 0))
	}
	base, err := Baselines(t.Context(), history, before, before.Add(24*time.Hour))
	if err != nil || base[backends.OpPush].N != 3000 {
		t.Fatalf("baselines %v: %v", base, err)
	}
	run := func(seed bool) []string {
		a := &applied{reasons: map[string][]string{}}
		r := newWatcher(a)
		if seed {
			r.SeedBaseline(backends.OpPush, base[backends.OpPush], before)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		c := newClock()
		for range 1000 {
			r.Observe(call(c.next(), backends.OpPush, 100, backends.Approach2, 10*time.Millisecond, rng.IntN(5) == 0))
			r.Wait()
		}
		return a.get("push")
	}
	if got := run(false); len(got) != 0 {
		t.Fatalf("without a baseline the watcher rolled back: %q", got)
	}
	got := run(true)
	if len(got) != 1 || !strings.Contains(got[0], "at the 100% stage: approach2 error rate") {
		t.Fatalf("seeded: %q", got)
	}
}
