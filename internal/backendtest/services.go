package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// PostgresDSN returns the DSN of a fresh schema in the local PostgreSQL
// (GITGATE_TEST_POSTGRES_DSN overrides the server), dropped when the test
// ends. PostgreSQL must be running: make test starts it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("GITGATE_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable (make test starts it): %v", base, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			_ = c.Close(ctx)
		}
	})
	return base + "&search_path=" + schema
}

// Redis returns a client of the local Redis (GITGATE_TEST_REDIS_ADDR
// overrides 127.0.0.1:6379), closed when the test ends. Redis must be
// running: make test starts it.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("GITGATE_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is not reachable (make test starts it): %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisPrefix returns a key prefix unique to the test, so that tests never
// see each other's keys; the keys under it are deleted when the test ends.
func RedisPrefix(t testing.TB, c *redis.Client) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "gitgate-test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("cleaning up %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleaning up %s*: %v", prefix, err)
		}
	})
	return prefix
}

// UnreachableRedis returns a client of a loopback port nothing listens on,
// failing fast (no retries), closed when the test ends.
func UnreachableRedis(t testing.TB) *redis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
