package branches

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// TestStores runs the same checks on every Store implementation (real
// Redis and PostgreSQL on loopback, with keys and a schema of their own).
func TestStores(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"file":     func(t *testing.T) Store { s, err := OpenFileStore(t.TempDir()); must(t, err); return s },
		"redis":    newRedisStore,
		"postgres": newPGStore,
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { checkStore(t, open(t)) })
	}
}

func checkStore(t *testing.T, s Store) {
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a := Pushed{Project: "p", Agent: "a1", URL: "https://h/r.git", Branch: "agent/a1/x", Commit: "c1", At: at}
	b := Pushed{Project: "q", Agent: "a2", URL: "https://h/r.git", Branch: "agent/a2/y", Commit: "c2", At: at}
	must(t, s.RecordPush(ctx, a))
	must(t, s.RecordPush(ctx, b))
	a.Commit, a.At = "c3", at.Add(time.Hour)
	must(t, s.RecordPush(ctx, a)) // the last push wins
	all, err := s.Pushed(ctx, "")
	must(t, err)
	if len(all) != 2 || all[0].Commit != "c3" || !all[0].At.Equal(a.At) || all[1].Branch != b.Branch {
		t.Errorf("pushed = %+v", all)
	}
	if q, _ := s.Pushed(ctx, "q"); len(q) != 1 || q[0].Agent != "a2" {
		t.Errorf("pushed(q) = %+v", q)
	}
	must(t, s.Forget(ctx, a.Key()))
	must(t, s.Forget(ctx, a.Key()))
	if p, _ := s.Pushed(ctx, "p"); len(p) != 0 {
		t.Errorf("forgotten record still listed: %+v", p)
	}
	d := Deletion{ID: newID(at), Project: "p", Branch: "agent/a1/x", Commit: "c3", Reason: "merged", By: "cleanup", At: at, KeepRef: KeepRefPrefix + "x"}
	must(t, s.RecordDeletion(ctx, d))
	must(t, s.MarkRestored(ctx, d.ID, at.Add(time.Hour)))
	got, ok, err := findDeletion(ctx, s, d.ID)
	must(t, err)
	if !ok || got.RestoredAt == nil || !got.RestoredAt.Equal(at.Add(time.Hour)) || got.Commit != "c3" {
		t.Errorf("deletion = %+v, %v", got, ok)
	}
	if err := s.MarkRestored(ctx, "nope", at); err == nil {
		t.Error("marking an unknown deletion restored succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newRedisStore(t *testing.T) Store {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	prefix := "gitgate-test-branches-" + randomName() + ":"
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		rdb.Del(ctx, prefix+"branches:pushed", prefix+"branches:deleted")
		_ = rdb.Close()
	})
	return NewRedisStore(rdb, prefix)
}

func newPGStore(t *testing.T) Store {
	base := os.Getenv("GITGATE_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, base)
	must(t, err)
	schema := "branches_" + randomName()
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	must(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = conn.Close(ctx)
	})
	u, err := url.Parse(base)
	must(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := OpenPGStore(ctx, u.String())
	must(t, err)
	t.Cleanup(s.Close)
	return s
}
