package rediserr_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/rediserr"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestCategoriesOfRealRedisErrors: the errors real Redis servers give in a
// failover's situations are unavailable, a caller's deadline is timeout,
// and a reply that means a bug is internal.
func TestCategoriesOfRealRedisErrors(t *testing.T) {
	ctx := t.Context()
	master, replica := backendtest.StartRedis(t), backendtest.StartRedis(t)
	sentinels := backendtest.StartSentinel(t)
	noRetry := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	m, r := noRetry(master.Addr), noRetry(replica.Addr)
	_, port, _ := strings.Cut(master.Addr, ":")
	if err := r.ReplicaOf(ctx, "127.0.0.1", port).Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(ctx, "s", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		err  func() error
		want backends.Category
	}{
		"READONLY (a write on a replica, as on a demoted master)": {func() error { return r.Set(ctx, "k", "v", 0).Err() }, backends.Unavailable},
		"MASTERDOWN (a replica without its master)": {func() error {
			dead := backendtest.UnreachableRedis(t).Options().Addr
			_, dport, _ := strings.Cut(dead, ":")
			if err := r.ConfigSet(ctx, "replica-serve-stale-data", "no").Err(); err != nil {
				return err
			}
			if err := r.ReplicaOf(ctx, "127.0.0.1", dport).Err(); err != nil {
				return err
			}
			return r.Get(ctx, "s").Err()
		}, backends.Unavailable},
		"connection refused": {func() error { return backendtest.UnreachableRedis(t).Get(ctx, "k").Err() }, backends.Unavailable},
		"no master known to the sentinels": {func() error {
			fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "nobody", SentinelAddrs: sentinels.Addrs, MaxRetries: -1})
			defer func() { _ = fc.Close() }()
			return fc.Get(ctx, "k").Err()
		}, backends.Unavailable},
		"a server that is no sentinel": {func() error {
			fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "nobody", SentinelAddrs: []string{master.Addr}, MaxRetries: -1})
			defer func() { _ = fc.Close() }()
			return fc.Get(ctx, "k").Err()
		}, backends.Unavailable},
		"closed client": {func() error {
			c := redis.NewClient(&redis.Options{Addr: master.Addr})
			_ = c.Close()
			return c.Get(ctx, "k").Err()
		}, backends.Unavailable},
		"the caller's deadline": {func() error {
			dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
			defer cancel()
			return m.Get(dctx, "s").Err()
		}, backends.Timeout},
		"an i/o timeout (a hung server)": {func() error {
			c := redis.NewClient(&redis.Options{Addr: master.Addr, MaxRetries: -1, ReadTimeout: 50 * time.Millisecond})
			defer func() { _ = c.Close() }()
			if err := m.Do(ctx, "CLIENT", "PAUSE", "300", "ALL").Err(); err != nil {
				return err
			}
			return c.Get(ctx, "s").Err()
		}, backends.Unavailable},
		"WRONGTYPE (a bug)": {func() error { return m.LPush(ctx, "s", "x").Err() }, backends.Internal},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			testkit.Eventually(t, "the call fails", func() bool { err = c.err(); return err != nil })
			if got := rediserr.Category(err); got != c.want {
				t.Fatalf("Category(%v) = %s, want %s", err, got, c.want)
			}
			wrapped := rediserr.Wrap("test store (Redis)", err)
			if got := backends.CategoryOf(wrapped); got != c.want || !errors.Is(wrapped, err) {
				t.Fatalf("Wrap(%v) = %v (%s), want category %s wrapping it", err, wrapped, got, c.want)
			}
			t.Logf("%v -> %v", err, wrapped)
		})
	}
}

// TestWrapKeepsCategoriesAndNil: nil stays nil and an error that already
// has a category keeps it.
func TestWrapKeepsCategoriesAndNil(t *testing.T) {
	if rediserr.Wrap("x", nil) != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
	in := backends.Errorf(backends.Conflict, "taken")
	if got := rediserr.Wrap("x", in); got != error(in) { //nolint:errorlint // the very same error, unwrapped
		t.Fatalf("Wrap changed %v into %v", in, got)
	}
	if got := rediserr.Category(redis.Nil); got != backends.Internal {
		t.Fatalf("Category(redis.Nil) = %s, want internal (a caller that did not expect it)", got)
	}
}
