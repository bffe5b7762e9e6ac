package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/backendtest"
	"github.com/gitgate/gitgate/flags"
)

// TestApproach2KilledAtFiftyPercent: with every operation at 50%, the
// Approach 2 service is killed mid-run. Reads keep succeeding (falling
// back), writes either succeed or fail without having been applied twice,
// the breaker opens, and the remote holds every pushed commit once.
func TestApproach2KilledAtFiftyPercent(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	w.cfg = w.config(t)
	addr, proc := w.startBackend(t)
	flagPath := filepath.Join(t.TempDir(), "flags.json")
	half := flags.NewFile(opNames())
	for _, op := range opNames() {
		_ = half.SetRoute(op, 50)
	}
	if err := half.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	w.cfg.Flags.Path = flagPath
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
	w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	w.startHTTP(t)

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
	if got := w.metric(t, `gitgate_breaker_state{backend="approach2",op="status"}`); got != "2" {
		t.Errorf("status breaker state %q after approach2 died, want 2 (open)", got)
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
