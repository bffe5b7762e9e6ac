package approach2_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/lock/redislock"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/redis/go-redis/v9"
)

// outageWorld is the service whose Redis and PostgreSQL connections go
// through proxies a test can cut.
type outageWorld struct {
	env              *backendtest.Env
	client           backends.Executor
	cutRedis, cutSQL func()
}

func newOutageWorld(t *testing.T) *outageWorld {
	env := backendtest.NewEnv(t)
	redisAddr, cutRedis := backendtest.Proxy(t, "127.0.0.1:6379")
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	locker := redislock.New(rdb, redislock.Options{Prefix: backendtest.RedisPrefix(t, backendtest.Redis(t))})
	dsn := backendtest.PostgresDSN(t)
	sqlAddr, cutSQL := backendtest.Proxy(t, "127.0.0.1:5432")
	j, err := journal.Open(t.Context(), strings.Replace(dsn, "127.0.0.1:5432", sqlAddr, 1), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	engine := backendtest.NewEngine(t, env, lock.Reentrant(locker), nil)
	once, err := approach2.NewOnce(approach2.OnceConfig{Engine: engine, Locker: locker, Journal: j, LockKey: lockKey})
	if err != nil {
		t.Fatal(err)
	}
	w := &outageWorld{env: env, client: startService(t, once), cutRedis: cutRedis, cutSQL: cutSQL}
	backendtest.Clone(t, w.client, env, env.Agent, "once")
	backendtest.Do[*backends.WriteFileResult](t, w.client, env.Agent, &backends.WriteFileRequest{Scope: scope(env, ""), Path: "x.txt", Content: "x"})
	return w
}

// wantRefusedCommit: the commit fails as unavailable and nothing changed:
// the file is still uncommitted and the history is as before.
func (w *outageWorld) wantRefusedCommit(t *testing.T, names string) {
	t.Helper()
	before := backendtest.Do[*backends.StatusResult](t, w.client, w.env.Agent, &backends.StatusRequest{Scope: scope(w.env, "")})
	err := backendtest.Fail(t, w.client, w.env.Agent, &backends.CommitRequest{Scope: scope(w.env, "k"), Message: "during the outage"})
	backendtest.WantCategory(t, err, backends.Unavailable)
	if !strings.Contains(err.Error(), names) {
		t.Fatalf("the error does not name the failed dependency (%s): %v", names, err)
	}
	after := backendtest.Do[*backends.StatusResult](t, w.client, w.env.Agent, &backends.StatusRequest{Scope: scope(w.env, "")})
	if after.Head != before.Head || after.Clean || len(after.Entries) != 1 {
		t.Fatalf("a refused commit changed the workspace: %+v -> %+v", before, after)
	}
}

func TestRedisDownRefusesWritesAndChangesNothing(t *testing.T) {
	w := newOutageWorld(t)
	w.cutRedis()
	w.wantRefusedCommit(t, "Redis")
}

func TestPostgresDownRefusesWritesAndChangesNothing(t *testing.T) {
	w := newOutageWorld(t)
	w.cutSQL()
	w.wantRefusedCommit(t, "PostgreSQL")
}
