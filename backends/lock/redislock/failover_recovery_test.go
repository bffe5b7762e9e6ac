package redislock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestReleaseLostInAFailoverIsMadeAgain: a lease released while its delete
// reaches no replica (the replication link is cut) is released again on
// the replica Sentinel then promotes. Without that, the promoted replica
// keeps the key, with its token, until the TTL passes, and every next
// operation on the workspace waits for it: what the fleet test saw after
// its failover (writes waiting seconds for locks released just before).
// The TTL here is longer than testkit.Patience, so the key's expiry cannot
// pass for the release. Then, once the client is closed, no background
// retry is left running.
func TestReleaseLostInAFailoverIsMadeAgain(t *testing.T) {
	s := backendtest.StartSentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	closeClient := sync.OnceFunc(func() { _ = c.Close() })
	t.Cleanup(closeClient)
	const ttl = 10 * time.Minute
	l := New(c, Options{Prefix: "gitgate-test:", TTL: ttl, WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	master, replica := s.Nodes()[0], s.Nodes()[1]
	key := l.lockKey("ws")

	le, err := l.Acquire(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	token := asLeaseForRecovery(t, le).token
	if got := getOnNode(t, replica, key); got != token { // the grant was acknowledged by the replica
		t.Fatalf("the replica has %q for the granted lock, want the lease's token", got)
	}

	// The replica hangs and its link is cut: the release's delete reaches
	// the master only.
	resumeReplica := s.Pause(replica)
	mc := redis.NewClient(&redis.Options{Addr: master})
	err = mc.ClientKillByFilter(ctx, "TYPE", "replica").Err()
	_ = mc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := le.Release(ctx); err != nil {
		t.Fatalf("Release = %v, want nil (the master deleted the key)", err)
	}
	if got := getOnNode(t, master, key); got != "" {
		t.Fatalf("the master still has the released lock (%q)", got)
	}

	// The master hangs for good: the sentinels promote the replica, which
	// never received the delete.
	s.Pause(master)
	resumeReplica()
	testkit.EventuallyNil(t, "the sentinels promote the replica", func() error {
		m, err := s.Master(ctx)
		if err == nil && m != replica {
			err = fmt.Errorf("the master is still %s", m)
		}
		return err
	})
	testkit.EventuallyNil(t, "the promoted replica no longer has the released lock", func() error {
		if got := getOnNode(t, replica, key); got != "" {
			return fmt.Errorf("it has the key with the released lease's token (%v)", got == token)
		}
		return nil
	})

	closeClient()
	testkit.EventuallyNil(t, "no release is retried once the client is closed", func() error {
		buf := make([]byte, 1<<20)
		if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*lease).settleRelease") {
			return errors.New("a settleRelease goroutine is still running")
		}
		return nil
	})
}

// getOnNode reads key on the data node at addr directly (not through the
// sentinels): "" when it is missing.
func getOnNode(t *testing.T, addr, key string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := c.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("GET %s on %s: %v", key, addr, err)
	}
	return v
}

// asLeaseForRecovery returns le as the package's lease.
func asLeaseForRecovery(t *testing.T, le any) *lease {
	t.Helper()
	l, ok := le.(*lease)
	if !ok {
		t.Fatalf("lease is a %T", le)
	}
	return l
}
