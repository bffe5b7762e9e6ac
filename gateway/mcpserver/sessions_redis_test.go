package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/redis/go-redis/v9"
)

// redisStores returns n stores (replicas) sharing the test Redis under a
// fresh prefix, and a client of that Redis for looking at the keys.
func redisStores(t *testing.T, n int, o RedisSessionOptions) ([]*RedisSessionStore, *redis.Client, string) {
	t.Helper()
	rdb := backendtest.Redis(t)
	o.Prefix = backendtest.RedisPrefix(t, rdb)
	o.Logger = slog.New(slog.DiscardHandler)
	var stores []*RedisSessionStore
	for range n {
		stores = append(stores, NewRedisSessionStore(rdb, o))
	}
	return stores, rdb, o.Prefix
}

func mustOpen(t *testing.T, s SessionStore, agent string) string {
	t.Helper()
	id, _, err := s.Open(t.Context(), agent)
	if err != nil {
		t.Fatalf("open a session for %s: %v", agent, err)
	}
	return id
}

// TestRedisSessionsCapPerAgentAcrossReplicas: an agent's live sessions
// never exceed the cap, counted over every replica; opening one more ends
// the least recently used one (whichever replica opened or used it), and
// the opening replica names those it knows, to free mcp-go's state for
// them; another agent's sessions are untouched.
func TestRedisSessionsCapPerAgentAcrossReplicas(t *testing.T) {
	const limit = 3
	stores, rdb, prefix := redisStores(t, 2, RedisSessionOptions{MaxPerAgent: limit, IdleTTL: time.Hour})
	a, b := stores[0], stores[1]
	ctx := t.Context()
	live := func(id string) bool { return rdb.Exists(ctx, prefix+"mcp:session:"+sessionHash(id)).Val() == 1 }
	eve := mustOpen(t, a, "eve")
	s1, s2 := mustOpen(t, a, "ada"), mustOpen(t, b, "ada")
	s3 := mustOpen(t, a, "ada")
	if err := b.Use(ctx, s1, "ada"); err != nil { // least recently used first: s2, s3, s1
		t.Fatalf("use on the other replica: %v", err)
	}
	s4, ended, err := a.Open(ctx, "ada") // evicts s2, which b opened
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 0 {
		t.Errorf("a names %d ended sessions; the one evicted was opened by b", len(ended))
	}
	if !live(s1) || live(s2) || !live(s3) || !live(s4) {
		t.Errorf("live: s1 %v, s2 %v, s3 %v, s4 %v; want all but s2 (the least recently used)", live(s1), live(s2), live(s3), live(s4))
	}
	if n := rdb.ZCard(ctx, prefix+"mcp:agent:ada").Val(); n != limit {
		t.Errorf("ada's set holds %d sessions, want %d", n, limit)
	}
	if _, ended, err = b.Open(ctx, "ada"); err != nil || len(ended) != 0 { // evicts s3, a's
		t.Errorf("b's open: %v, names %d ended sessions; the one evicted was a's", err, len(ended))
	}
	if live(s3) {
		t.Error("s3, then the least recently used, survived")
	}
	if _, ended, err = a.Open(ctx, "ada"); err != nil || len(ended) != 1 || ended[0] != s1 { // evicts s1
		t.Errorf("a's open: %v, names %d ended sessions; want s1 (a opened it)", err, len(ended))
	}
	for i, s := range stores {
		if err := s.Use(ctx, s2, "ada"); !errors.Is(err, ErrNoSession) {
			t.Errorf("evicted s2 on replica %d: %v, want ErrNoSession", i, err)
		}
		if err := s.Use(ctx, s4, "ada"); err != nil {
			t.Errorf("s4 on replica %d: %v", i, err)
		}
	}
	if err := b.Use(ctx, eve, "eve"); err != nil {
		t.Errorf("eve's session after ada's opens: %v", err)
	}
}

// TestRedisSessionsCapHoldsUnderConcurrentOpens: replicas opening an
// agent's sessions at once cannot pass the cap together (one script per
// open), and exactly the cap of them stay usable.
func TestRedisSessionsCapHoldsUnderConcurrentOpens(t *testing.T) {
	const limit, opens = 5, 40
	stores, rdb, prefix := redisStores(t, 4, RedisSessionOptions{MaxPerAgent: limit, IdleTTL: time.Hour})
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for i := range opens {
		wg.Go(func() {
			id, _, err := stores[i%len(stores)].Open(t.Context(), "ada")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := rdb.ZCard(t.Context(), prefix+"mcp:agent:ada").Val(); n != limit {
		t.Errorf("ada's set holds %d sessions after %d concurrent opens, want %d", n, opens, limit)
	}
	keys, err := rdb.Keys(t.Context(), prefix+"mcp:session:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != limit {
		t.Errorf("%d session keys after %d concurrent opens, want %d", len(keys), opens, limit)
	}
	live := 0
	for _, id := range ids {
		// Ask Redis through a store that opened none of them (no cache).
		fresh := NewRedisSessionStore(rdb, RedisSessionOptions{Prefix: prefix, MaxPerAgent: limit, IdleTTL: time.Hour})
		if fresh.Use(t.Context(), id, "ada") == nil {
			live++
		}
	}
	if live != limit {
		t.Errorf("%d sessions usable, want %d", live, limit)
	}
}

// TestRedisSessionsBindingAndHashedKeys: another agent can neither use nor
// end a session; Redis holds the SHA-256 of the id with the agent and the
// creation time, never the id.
func TestRedisSessionsBindingAndHashedKeys(t *testing.T) {
	stores, rdb, prefix := redisStores(t, 2, RedisSessionOptions{IdleTTL: time.Hour})
	a, b := stores[0], stores[1]
	ctx := t.Context()
	id := mustOpen(t, a, "ada")
	if err := b.Use(ctx, id, "eve"); !errors.Is(err, ErrNoSession) {
		t.Errorf("eve uses ada's session: %v, want ErrNoSession", err)
	}
	if err := b.End(ctx, id, "eve"); err != nil {
		t.Fatal(err)
	}
	if err := b.Use(ctx, id, "ada"); err != nil {
		t.Errorf("ada's session after eve's DELETE: %v", err)
	}
	key := prefix + "mcp:session:" + sessionHash(id)
	fields, err := rdb.HGetAll(ctx, key).Result()
	if err != nil || fields["agent"] != "ada" || fields["created"] == "" {
		t.Fatalf("%s holds %v (%v), want agent ada and created", key, fields, err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		dump := k
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			dump += fmt.Sprint(rdb.HGetAll(ctx, k).Val())
		case "zset":
			dump += fmt.Sprint(rdb.ZRange(ctx, k, 0, -1).Val())
		}
		if strings.Contains(dump, id) || strings.Contains(dump, strings.TrimPrefix(id, "gitgate-")) {
			t.Errorf("Redis holds the session id: %s", k)
		}
	}
	// A DELETE on one replica ends the session on the other, even one
	// that has it cached.
	if err := b.End(ctx, id, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := a.Use(ctx, id, "ada"); !errors.Is(err, ErrNoSession) {
		t.Errorf("after the DELETE on b, a: %v, want ErrNoSession", err)
	}
}

// TestRedisSessionsIdleTTL: every use restarts a session's TTL in Redis
// (PEXPIRE); a session idle past it is gone for every replica, even one
// that still has it cached.
func TestRedisSessionsIdleTTL(t *testing.T) {
	t.Run("sliding", func(t *testing.T) {
		stores, rdb, prefix := redisStores(t, 2, RedisSessionOptions{IdleTTL: time.Hour})
		id := mustOpen(t, stores[0], "ada")
		key := prefix + "mcp:session:" + sessionHash(id)
		if ttl := rdb.PTTL(t.Context(), key).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("a new session's TTL is %s, want up to an hour", ttl)
		}
		// As if it had been idle for 59 minutes: a use starts the hour over.
		rdb.PExpire(t.Context(), key, time.Minute)
		if err := stores[1].Use(t.Context(), id, "ada"); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(t.Context(), key).Val(); ttl <= time.Minute {
			t.Errorf("after a use the TTL is %s: not restarted", ttl)
		}
		if ttl := rdb.PTTL(t.Context(), prefix+"mcp:agent:ada").Val(); ttl <= time.Minute {
			t.Errorf("the agent's set expires in %s, before its sessions", ttl)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		stores, rdb, prefix := redisStores(t, 1, RedisSessionOptions{IdleTTL: 300 * time.Millisecond, MaxPerAgent: 2})
		s := stores[0]
		id := mustOpen(t, s, "ada")
		key := prefix + "mcp:session:" + sessionHash(id)
		testkit.Eventually(t, "the idle session's key expires", func() bool {
			return rdb.Exists(context.WithoutCancel(t.Context()), key).Val() == 0
		})
		if err := s.Use(t.Context(), id, "ada"); !errors.Is(err, ErrNoSession) {
			t.Errorf("a session idle past its TTL: %v, want ErrNoSession (Redis decides over the cache)", err)
		}
		// Expired sessions leave the agent's set when it opens another.
		mustOpen(t, s, "ada")
		if n := rdb.ZCard(t.Context(), prefix+"mcp:agent:ada").Val(); n != 1 {
			t.Errorf("ada's set holds %d sessions, want the new one only", n)
		}
	})
}
