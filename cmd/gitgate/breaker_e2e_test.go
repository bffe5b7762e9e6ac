package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestApproach2KilledAtFiftyPercent: with every operation at 50%, the
// Approach 2 service is killed mid-run. Reads keep succeeding (falling
// back), writes either succeed or fail without having been applied twice,
// breakers open (or the automatic rollback gets there first), and the
// remote holds every pushed commit once.
func TestApproach2KilledAtFiftyPercent(t *testing.T) {
	half := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		_ = half.SetRoute(op, 50)
	}
	w, _, proc := newCanaryWorld(t, half)

	const agents = 12
	var readFailures, writesOK, writesFailed, afterKill atomic.Int64
	var killed atomic.Bool
	var started sync.WaitGroup // every agent has made a round of calls (or given up)
	rounds := make([]atomic.Int64, agents)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	started.Add(agents)
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := sync.OnceFunc(started.Done)
			defer first()
			c := newLoadClient(t, w.mcpURL, agentToken)
			ws := fmt.Sprintf(`{"workspace":"half-%02d"`, i)
			if _, err := c.backendOf(t, "clone", ws+`,"url":"`+w.repoURL+`"}`); err != "" {
				t.Errorf("clone: %s", err)
				return
			}
			_, _ = c.backendOf(t, "checkout", ws+fmt.Sprintf(`,"branch":"half-%02d","create":true}`, i))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				after := killed.Load()
				if _, err := c.backendOf(t, "status", ws+"}"); err != "" {
					readFailures.Add(1)
					t.Errorf("a read failed: %s", err)
				}
				path := fmt.Sprintf("f-%03d.txt", n)
				ok := true
				for _, call := range [][2]string{
					{"write_file", ws + `,"path":"` + path + `","content":"x"}`},
					{"commit", ws + `,"message":"` + fmt.Sprintf("half-%02d change %03d", i, n) + `"}`},
					{"push", ws + "}"},
				} {
					if _, err := c.backendOf(t, call[0], call[1]); err != "" {
						ok = false
					}
				}
				if ok {
					writesOK.Add(1)
				} else {
					writesFailed.Add(1)
				}
				if after {
					afterKill.Add(1) // a whole round started after the kill
				}
				rounds[i].Add(1)
				first()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	started.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var atKill [agents]int64
	for i := range rounds {
		atKill[i] = rounds[i].Load()
	}
	killed.Store(true)
	_ = proc.Kill()
	// Every operation the load sends to the dead service must be cut off
	// from it: by its breaker (5 consecutive failures) or, when fewer calls
	// came in, by the automatic rollback that answers the error rate
	// first. Which of the two wins per operation depends on the timing.
	ops := []string{"status", "write_file", "commit", "push"}
	cutOff := func(op string) (state, rolledBack string, ok bool) {
		state = w.metric(t, `gitgate_breaker_state{backend="approach2",op="`+op+`"}`)
		rolledBack = w.metric(t, `gitgate_auto_rollbacks_total{op="`+op+`"}`)
		return state, rolledBack, state == "2" || (rolledBack != "" && rolledBack != "0")
	}
	took := testkit.Eventually(t, "every agent has worked two rounds against the dead service and every operation is cut off from it", func() bool {
		for i := range rounds {
			if rounds[i].Load() < atKill[i]+2 {
				return false
			}
		}
		for _, op := range ops {
			if _, _, ok := cutOff(op); !ok {
				return false
			}
		}
		return true
	})
	stopLoad()
	t.Logf("reads failed %d; write rounds ok %d, failed %d; %d rounds after the kill, over %s", readFailures.Load(), writesOK.Load(), writesFailed.Load(), afterKill.Load(), took.Round(time.Millisecond))
	if afterKill.Load() == 0 || writesOK.Load() == 0 {
		t.Fatal("the load did not run across the kill")
	}
	breakersOpen := 0
	for _, op := range ops {
		state, rolledBack, ok := cutOff(op)
		t.Logf("%s: breaker state %q, automatic rollbacks %q", op, state, rolledBack)
		if state == "2" {
			breakersOpen++
		}
		if !ok {
			t.Errorf("%s still reaches the dead Approach 2: breaker state %q (want 2, open) and no automatic rollback", op, state)
		}
	}
	if breakersOpen == 0 {
		t.Error("no Approach 2 breaker opened after the service died")
	}
	for i := range agents {
		subjects := w.remoteGit(t, "log", "--format=%s", fmt.Sprintf("refs/heads/half-%02d", i))
		seen := map[string]bool{}
		for _, s := range strings.Split(subjects, "\n") {
			if seen[s] {
				t.Errorf("branch half-%02d has commit %q twice", i, s)
			}
			seen[s] = true
		}
	}
}

// TestBreakerClosesWhenTheServiceComesBack: status is all on Approach 2.
// The service is killed: status falls back to Approach 1 and its breaker
// opens. The service is started again where the gateway expects it: once
// the breaker's open period (approach2.breaker.open_for, 3 s here) is over, it goes
// half-open, its probe succeeds, it closes, and status is served by
// Approach 2 again. The automatic rollback is held off so that it does not
// take status off Approach 2 first.
func TestBreakerClosesWhenTheServiceComesBack(t *testing.T) {
	f := flags.NewFile(backends.OpNames())
	_ = f.SetRoute("status", 100)
	w, _, proc := newCanaryWorld(t, f, func(c *configs.Config) {
		noAutomaticRollback(c)
		c.Approach2.Breaker.OpenFor = 3 * time.Second
	})
	addr := w.cfg.Approach2.Target
	c := w.httpClient(t, agentToken)
	w.ok(t, c, "clone", map[string]any{"workspace": "back", "url": w.repoURL})
	status := func() (backend string, fellBack bool) {
		t.Helper()
		res := w.ok(t, c, "status", map[string]any{"workspace": "back"})
		fell, _ := res["fell_back"].(bool)
		return res["backend"].(string), fell
	}
	const breaker = `gitgate_breaker_state{backend="approach2",op="status"}`
	if b, fell := status(); b != "approach2" || fell || w.metric(t, breaker) != "0" {
		t.Fatalf("with the service up: served by %s (fell back %v), breaker %s", b, fell, w.metric(t, breaker))
	}

	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.backendWait()
	testkit.Eventually(t, "the breaker opens", func() bool {
		if b, fell := status(); b != "approach1" || !fell {
			t.Fatalf("status with the service dead: served by %s (fell back %v)", b, fell)
		}
		return w.metric(t, breaker) == "2"
	})

	opened := time.Now()
	w.startBackendOn(t, addr, freeAddr(t))
	took := testkit.EventuallyEvery(t, "status is served by approach2 again", 250*time.Millisecond, func() bool {
		b, _ := status() // a fallback until the breaker lets a probe through
		return b == "approach2"
	})
	since := time.Since(opened)
	t.Logf("served by approach2 again %s after the service came back (%s after the breaker opened)", took.Round(time.Millisecond), since.Round(time.Millisecond))
	for i := range 5 {
		if b, fell := status(); b != "approach2" || fell {
			t.Fatalf("call %d once the service is back: served by %s (fell back %v)", i, b, fell)
		}
	}
	if got := w.metric(t, breaker); got != "0" {
		t.Fatalf("breaker state %s, want 0 (closed)", got)
	}
	var transitions []string
	for _, line := range strings.Split(w.logs.String(), "\n") {
		var l struct{ Msg, Breaker, From, To string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "circuit breaker changed state" && l.Breaker == "approach2/status" {
			transitions = append(transitions, l.From+"→"+l.To)
		}
	}
	got := strings.Join(transitions, ", ")
	if !strings.HasPrefix(got, "closed→open") || !strings.HasSuffix(got, "open→half-open, half-open→closed") {
		t.Fatalf("breaker transitions: %s", got)
	}
	t.Logf("breaker transitions: %s", got)
}
