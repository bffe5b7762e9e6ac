package approach2_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestWritesThroughSentinelFailover: Approach 2 writes (write, commit,
// push, each with its idempotency key) run while Sentinel fails Redis over
// twice, with the workspace locks in the Sentinel set through the failover
// client, each grant acknowledged by the replica. A push held at the remote
// across a failover keeps its lease and lands once; under load, a call
// that fails does so as unavailable (never internal) and its retry with
// the same key succeeds; afterwards every push key reached the remote
// exactly once (no write doubled), every branch ends at its last commit,
// and every journal entry is settled as succeeded.
func TestWritesThroughSentinelFailover(t *testing.T) {
	var hook atomic.Pointer[func()]
	env := envWithHook(t, &hook)
	s := backendtest.StartSentinel(t)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	locker := redislock.New(rdb, redislock.Options{TTL: 2 * time.Second, Prefix: "gitgate-test:", WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	r := newRig(t, env, locker)
	a := env.Agent
	const workers, rounds = 3, 4
	for w := range workers {
		r.commitOn(t, r.once, fmt.Sprintf("ws%d", w), fmt.Sprintf("b%d", w), "start")
	}
	before := env.Remote.Pushes("demo")

	// A push in flight at the remote while Sentinel fails over.
	arrived, release := make(chan struct{}), make(chan struct{})
	hold := func() { close(arrived); <-release }
	hook.Store(&hold)
	held := &backends.PushRequest{Scope: r.scope("ws0", "k-held")}
	held.Principal = a
	answered := make(chan error, 1)
	go func() {
		_, err := r.once.Execute(context.WithoutCancel(t.Context()), held)
		answered <- err
	}()
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the push never reached the remote")
	}
	hook.Store(nil)
	if _, err := s.Failover(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-answered; err != nil {
		t.Fatalf("the push held across the failover: %v", err)
	}
	pushKeys := 1

	// Load through a second failover.
	var (
		mu      sync.Mutex
		retries = map[backends.Category]int{}
		wg      sync.WaitGroup
	)
	do := func(req backends.Request) error {
		req.GetScope().Principal = a
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_, err := r.once.Execute(ctx, req)
			cancel()
			if err == nil {
				return nil
			}
			cat := backends.CategoryOf(err)
			if cat != backends.Unavailable {
				return fmt.Errorf("%s with key %s failed as %s (want unavailable, retried): %w", req.Op(), req.GetScope().IdempotencyKey, cat, err)
			}
			mu.Lock()
			retries[cat]++
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}
	errs := make(chan error, workers)
	heads := make([]string, workers)
	sent := make([][]backends.Request, workers)
	for w := range workers {
		wg.Go(func() {
			ws, branch := fmt.Sprintf("ws%d", w), fmt.Sprintf("b%d", w)
			for i := range rounds {
				k := fmt.Sprintf("%s-%d", ws, i)
				for _, req := range []backends.Request{
					&backends.WriteFileRequest{Scope: r.scope(ws, k+"-w"), Path: branch + ".txt", Content: k},
					&backends.CommitRequest{Scope: r.scope(ws, k+"-c"), Message: k},
					&backends.PushRequest{Scope: r.scope(ws, k+"-p")},
				} {
					if err := do(req); err != nil {
						errs <- err
						return
					}
					sent[w] = append(sent[w], req)
				}
			}
			st := backendtest.Do[*backends.StatusResult](t, r.once, a, &backends.StatusRequest{Scope: r.scope(ws, "")})
			heads[w] = st.Head
		})
	}
	if _, err := s.Failover(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	pushKeys += workers * rounds
	if n := env.Remote.Pushes("demo") - before; n != pushKeys {
		t.Fatalf("the remote saw %d pushes for %d push keys: a write was doubled or lost", n, pushKeys)
	}
	for w := range workers {
		if tip := env.RemoteRef(t, fmt.Sprintf("refs/heads/b%d", w)); tip != heads[w] {
			t.Errorf("remote b%d at %s, want the workspace's head %s", w, tip, heads[w])
		}
	}
	for _, reqs := range sent {
		for _, req := range reqs {
			if e := r.recorded(t, req); e.State != journal.Succeeded {
				t.Errorf("journal entry of %s (key %s) is %s (%s: %s), want succeeded", req.Op(), req.GetScope().IdempotencyKey, e.State, e.ErrorCategory, e.ErrorMessage)
			}
		}
	}
	t.Logf("%d writes through two failovers; retried after an unavailable answer: %v", workers*rounds*3+1, retries)
}
