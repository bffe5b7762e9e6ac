package backendtest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisProc is a redis-server (or sentinel) process a test started.
type redisProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been waited for
}

// kill stops the process (a paused one too) and waits for it.
func (p *redisProc) kill() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// launchRedis starts redis-server with args, to listen on addr, and waits
// until the server answering there is this process (INFO's process_id).
// A port found free by listening on 127.0.0.1:0 can be taken by another
// process (another test's server, or an outgoing connection) before
// redis-server binds it: this one then exits ("Address already in use")
// while the other answers. That is an error, so that the caller can try
// another port; so is no answer within 30 s.
func launchRedis(addr string, args []string) (*redisProc, error) {
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	p := &redisProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	want := strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("redis-server for %s exited (%v)", addr, cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			if got := infoFields(info)["process_id"]; got == want {
				return p, nil
			}
			err = fmt.Errorf("another process (pid %s) answers on %s", strings.TrimSpace(infoFields(info)["process_id"]), addr)
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// launchRedisOnFreePort calls launchRedis with args(addr) on a free port,
// trying other ports when one was taken meanwhile.
func launchRedisOnFreePort(t testing.TB, args func(addr string) []string) (string, *redisProc) {
	t.Helper()
	var last error
	for range 5 {
		addr := freeAddr(t)
		p, err := launchRedis(addr, args(addr))
		if err == nil {
			return addr, p
		}
		last = err
		t.Logf("%v; trying another port", err)
	}
	t.Fatalf("redis-server did not start: %v", last)
	return "", nil
}
