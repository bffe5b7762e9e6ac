package configs_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/redis/go-redis/v9"
)

// TestRedisPasswordFileRotates: with redis.password_file, go-redis
// authenticates each new connection with the file's current content
// (RedisConfig.CredentialsProvider). The private redis-server's password
// is changed, the file rewritten: open connections stay authenticated,
// new ones use the new password.
func TestRedisPasswordFileRotates(t *testing.T) {
	const oldPW, newPW = "redis-old-password-5d1", "redis-new-password-8e2"
	srv := backendtest.StartRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := t.Context()
	if err := admin.ConfigSet(ctx, "requirepass", oldPW).Err(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(path, []byte(oldPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := testkit.WriteTemp(t, "gitgate.yaml", "redis: {addr: "+srv.Addr+", password_file: "+path+"}\n")
	cfg, err := configs.Load(yaml, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, CredentialsProvider: cfg.Redis.CredentialsProvider(), MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("with the password at start: %v", err)
	}
	held := rdb.Conn() // a connection opened before the rotation
	defer func() { _ = held.Close() }()
	if err := held.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	if err := admin.ConfigSet(ctx, "requirepass", newPW).Err(); err != nil { // admin's connection is open: still authenticated
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(newPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); configs.WatchSecrets(wctx, log, 10*time.Millisecond, cfg.Secrets()...) }()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, "the watcher reads the new password", func() bool { return cfg.Redis.PasswordSecret.Value() == newPW })

	fresh := redis.NewClient(&redis.Options{Addr: srv.Addr, CredentialsProvider: cfg.Redis.CredentialsProvider(), MaxRetries: -1})
	defer fresh.Close()
	if err := fresh.Get(ctx, "k").Err(); err != nil {
		t.Fatalf("a new connection after the rotation: %v", err)
	}
	if err := held.Ping(ctx).Err(); err != nil {
		t.Fatalf("the connection open before the rotation: %v", err)
	}
	stale := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: oldPW, MaxRetries: -1})
	defer stale.Close()
	if err := stale.Ping(ctx).Err(); err == nil || strings.Contains(err.Error(), oldPW) {
		t.Fatalf("the old password after the rotation: %v, want a refusal that does not quote it", err)
	}
}
