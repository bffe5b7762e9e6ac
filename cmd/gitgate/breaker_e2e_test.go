package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/flags"
)

// TestApproach2KilledAtFiftyPercent: with every operation at 50%, the
// Approach 2 service is killed mid-run. Reads keep succeeding (falling
// back), writes either succeed or fail without having been applied twice,
// breakers open (or the automatic rollback gets there first), and the
// remote holds every pushed commit once.
func TestApproach2KilledAtFiftyPercent(t *testing.T) {
	half := flags.NewFile(opNames())
	for _, op := range opNames() {
		_ = half.SetRoute(op, 50)
	}
	w, _, proc := newCanaryWorld(t, half)

	const agents = 12
	var readFailures, writesOK, writesFailed, afterKill atomic.Int64
	var killedAt atomic.Pointer[time.Time]
	stop := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newLoadClient(t, w.mcpURL, agentToken)
			ws := fmt.Sprintf(`{"workspace":"half-%02d"`, i)
			if _, err := c.backendOf(t, "clone", ws+`,"url":"`+w.repoURL+`"}`); err != "" {
				t.Errorf("clone: %s", err)
				return
			}
			_, _ = c.backendOf(t, "checkout", ws+fmt.Sprintf(`,"branch":"half-%02d","create":true}`, i))
			for n := 0; time.Now().Before(stop); n++ {
				if _, err := c.backendOf(t, "status", ws+"}"); err != "" {
					readFailures.Add(1)
					t.Errorf("a read failed: %s", err)
				}
				if k := killedAt.Load(); k != nil {
					afterKill.Add(1)
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
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	now := time.Now()
	killedAt.Store(&now)
	_ = proc.Kill()
	wg.Wait()
	t.Logf("reads failed %d; write rounds ok %d, failed %d; %d rounds after the kill", readFailures.Load(), writesOK.Load(), writesFailed.Load(), afterKill.Load())
	if afterKill.Load() == 0 || writesOK.Load() == 0 {
		t.Fatal("the load did not run across the kill")
	}
	// Every operation the load sent to the dead service must have been cut
	// off from it: by its breaker (5 consecutive failures) or, when fewer
	// calls came in, by the automatic rollback that answers the error rate
	// first. Which of the two wins per operation depends on the timing.
	breakersOpen := 0
	for _, op := range []string{"status", "write_file", "commit", "push"} {
		state := w.metric(t, `gitgate_breaker_state{backend="approach2",op="`+op+`"}`)
		rolledBack := w.metric(t, `gitgate_auto_rollbacks_total{op="`+op+`"}`)
		t.Logf("%s: breaker state %q, automatic rollbacks %q", op, state, rolledBack)
		if state == "2" {
			breakersOpen++
		}
		if state != "2" && (rolledBack == "" || rolledBack == "0") {
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
