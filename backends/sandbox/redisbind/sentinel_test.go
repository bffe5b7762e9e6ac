package redisbind

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestSentinelBindingsThroughFailovers: bindings kept through go-redis'
// failover client survive two Sentinel failovers once replicated; calls
// racing the failovers fail, if at all, as unavailable (never internal) and
// succeed again by themselves. The load's client does not retry
// (MaxRetries -1), so that the failovers' errors reach the store.
func TestSentinelBindingsThroughFailovers(t *testing.T) {
	t.Parallel() // on a Sentinel set of its own; its time is mostly the failovers
	s := backendtest.StartSentinel(t)
	ctx := t.Context()
	c := s.Client()
	st := New(c, Options{TTL: time.Hour})
	kept := binding(key("p", "", "kept"), "s1")
	if err := st.Put(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	lc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs, MaxRetries: -1})
	t.Cleanup(func() { _ = lc.Close() })
	load := New(lc, Options{TTL: time.Hour})
	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		ok      int
		failed  = map[backends.Category]int{}
		samples = map[backends.Category]error{}
		wg      sync.WaitGroup
	)
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := binding(key("p", "", fmt.Sprintf("w%d-%d", w, i%20)), "s2")
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := load.Put(cctx, b)
				if err == nil {
					_, _, err = load.Get(cctx, b.Key)
				}
				cancel()
				mu.Lock()
				if err == nil {
					ok++
				} else {
					failed[backends.CategoryOf(err)]++
					samples[backends.CategoryOf(err)] = err
				}
				mu.Unlock()
			}
		})
	}
	for range 2 {
		if _, err := s.Failover(ctx); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		got, found, err := st.Get(ctx, kept.Key)
		if err != nil || !found || got.SandboxID != kept.SandboxID {
			close(stop)
			wg.Wait()
			t.Fatalf("after the failover the replicated binding reads %+v, %v, %v", got, found, err)
		}
	}
	mu.Lock()
	before := ok
	mu.Unlock()
	testkit.Eventually(t, "binding calls succeed again after the failovers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ok > before+20
	})
	close(stop)
	wg.Wait()
	t.Logf("calls: %d succeeded; failed by category: %v", ok, failed)
	for cat, err := range samples {
		if cat != backends.Unavailable {
			t.Errorf("a binding call during the failovers failed as %s, want unavailable: %v", cat, err)
		}
	}
}
