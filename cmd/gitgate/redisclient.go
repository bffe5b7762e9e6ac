package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/configs"
)

// newRedisClient returns the client of the configured Redis: a *redis.Client
// of redis.addr, or, with redis.sentinel, go-redis' failover client, which
// asks the sentinels for the master, follows failovers (+switch-master),
// and drops connections to a demoted master. Both authenticate each new
// connection with the current password (redis.password_env or _file).
// Every package takes it as redis.UniversalClient. The caller closes it.
func newRedisClient(c configs.RedisConfig) redis.UniversalClient {
	if c.Sentinel.Enabled() {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:          c.Sentinel.MasterName,
			SentinelAddrs:       c.Sentinel.Addrs,
			CredentialsProvider: c.CredentialsProvider(),
		})
	}
	return redis.NewClient(&redis.Options{Addr: c.Addr, CredentialsProvider: c.CredentialsProvider()})
}

// checkRedis checks that the Redis of c answers within 5s (through the
// sentinels, its master).
func checkRedis(ctx context.Context, rdb redis.UniversalClient, c configs.RedisConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%s: %w", redisTarget(c), err)
	}
	return nil
}

// redisTarget names the configured Redis for messages (never the password).
func redisTarget(c configs.RedisConfig) string {
	if c.Sentinel.Enabled() {
		return fmt.Sprintf("redis.sentinel (master %q via %s)", c.Sentinel.MasterName, strings.Join(c.Sentinel.Addrs, ","))
	}
	return "redis.addr " + c.Addr
}

// redisLockOptions are the locker's options of c: its TTL, prefix and,
// with Sentinel, the replicas each grant and renewal waits for.
func redisLockOptions(c configs.RedisConfig) redislock.Options {
	o := redislock.Options{TTL: c.LockTTL, Prefix: c.Prefix}
	if c.Sentinel.Enabled() {
		o.WaitReplicas, o.WaitTimeout = c.Sentinel.WaitReplicas, c.Sentinel.WaitTimeout
	}
	return o
}
