package backendtest

import (
	"fmt"
	"net"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a private redis-server (Debian's) on a free loopback port,
// without persistence, for fault tests that stop or restart Redis: the
// shared one at 127.0.0.1:6379 is never stopped or flushed.
type RedisServer struct {
	t    testing.TB
	Addr string
	proc *redisProc
}

// StartRedis starts a private redis-server, stopped when the test ends.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (make test uses Debian's redis-server)")
	}
	s := &RedisServer{t: t}
	t.Cleanup(s.stop)
	s.Addr, s.proc = launchRedisOnFreePort(t, s.args)
	return s
}

// args are the server's arguments on addr: nothing kept on disk.
func (s *RedisServer) args(addr string) []string {
	_, port, _ := net.SplitHostPort(addr)
	return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.t.TempDir(), "--daemonize", "no", "--loglevel", "warning"}
}

// start starts the server again on its address.
func (s *RedisServer) start() {
	s.t.Helper()
	p, err := launchRedis(s.Addr, s.args(s.Addr))
	if err != nil {
		s.t.Fatal(err)
	}
	s.proc = p
}

func (s *RedisServer) stop() {
	s.proc.kill()
	s.proc = nil
}

// Restart kills the server and starts an empty one on the same port: what
// a Redis without persistence keeps across a restart (nothing).
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// Client returns a client of the server, closed when the test ends.
func (s *RedisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// String names the server for messages.
func (s *RedisServer) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
