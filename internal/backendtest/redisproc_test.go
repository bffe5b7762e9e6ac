package backendtest

import (
	"strings"
	"testing"
)

// TestLaunchRedisNoticesATakenPort: a redis-server started on a port
// another server took is not mistaken for a running server (it exits;
// the other one answers).
func TestLaunchRedisNoticesATakenPort(t *testing.T) {
	s := StartRedis(t)
	p, err := launchRedis(s.Addr, s.args(s.Addr))
	if err == nil {
		p.kill()
		t.Fatal("a second redis-server on a taken port was taken for a running server")
	}
	if !strings.Contains(err.Error(), "exited") && !strings.Contains(err.Error(), "another process") {
		t.Fatalf("error %v does not say why", err)
	}
	if err := s.Client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the first server: %v", err)
	}
}
