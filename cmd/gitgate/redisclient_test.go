package main

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestNewRedisClientFollowsSentinel: with redis.sentinel the constructor
// returns a failover client that reaches the master the sentinels name,
// before and after a failover, and the locker's options wait for the
// configured replicas; with redis.addr it is a plain client.
func TestNewRedisClientFollowsSentinel(t *testing.T) {
	t.Parallel() // on a Sentinel set of its own; it mostly waits for the sentinels and the client to follow a failover
	s := backendtest.StartSentinel(t)
	c := configs.RedisConfig{Sentinel: configs.RedisSentinelConfig{MasterName: s.MasterName, Addrs: s.Addrs, WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond},
		LockTTL: 10 * time.Second}
	rdb := newRedisClient(c)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := t.Context()
	if err := checkRedis(ctx, rdb, c); err != nil {
		t.Fatal(err)
	}
	if o := redisLockOptions(c); o.WaitReplicas != 1 || o.WaitTimeout != 300*time.Millisecond {
		t.Fatalf("lock options %+v do not wait for the replica", o)
	}
	for i := range 2 {
		master, err := s.Master(ctx)
		if err != nil {
			t.Fatal(err)
		}
		testkit.EventuallyNil(t, "a SET through the failover client", func() error {
			return rdb.Set(ctx, "gitgate-test:k", i, 0).Err()
		})
		direct := redis.NewClient(&redis.Options{Addr: master})
		got, err := direct.Get(ctx, "gitgate-test:k").Int()
		_ = direct.Close()
		if err != nil || got != i {
			t.Fatalf("the master %s has %d, %v; want %d", master, got, err, i)
		}
		if i == 0 {
			if _, err := s.Failover(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain := newRedisClient(configs.RedisConfig{Addr: "127.0.0.1:1"})
	defer func() { _ = plain.Close() }()
	if _, ok := plain.(*redis.Client); !ok || redisTarget(configs.RedisConfig{Addr: "127.0.0.1:1"}) != "redis.addr 127.0.0.1:1" {
		t.Fatalf("redis.addr gives %T", plain)
	}
	if err := checkRedis(context.Background(), plain, configs.RedisConfig{Addr: "127.0.0.1:1"}); err == nil {
		t.Fatal("a Redis nobody listens on answered")
	}
}
