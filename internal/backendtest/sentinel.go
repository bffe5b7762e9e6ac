package backendtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a private Redis Sentinel set on loopback: one master, one
// replica and three sentinels (quorum 2), each a redis-server process on
// its own free port, without persistence, with failover settings fast
// enough for tests (down-after-milliseconds 1000, failover-timeout 3000).
// The shared Redis at 127.0.0.1:6379 is never touched.
type Sentinel struct {
	MasterName string
	Addrs      []string // the sentinels' host:port

	t     testing.TB
	nodes []*sentinelProc // the data nodes: the first master, the first replica
	sents []*sentinelProc
}

type sentinelProc struct {
	addr string
	dir  string // its configuration and log; removed by stop, after the log is shown on failure
	proc *redisProc
}

// sentinelDeadline bounds every wait of the harness: starting, discovery
// and failover (a loaded two-core machine is slow, the processes are not).
const sentinelDeadline = 60 * time.Second

// StartSentinel starts a master, a replica of it and three sentinels
// monitoring it, waits until the replica is in sync and every sentinel
// knows the replica and the two other sentinels, and stops them all when
// the test ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (make test uses Debian's redis-server)")
	}
	s := &Sentinel{MasterName: "gitgate-test", t: t}
	t.Cleanup(s.stop)
	master := s.startNode("")
	s.startNode(master.addr)
	for range 3 {
		p := s.startProc(true, fmt.Sprintf(`sentinel monitor %s 127.0.0.1 %s 2
sentinel down-after-milliseconds %[1]s 1000
sentinel failover-timeout %[1]s 3000
sentinel parallel-syncs %[1]s 1
`, s.MasterName, portOf(master.addr)))
		s.Addrs = append(s.Addrs, p.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sentinelDeadline)
	defer cancel()
	if err := s.settled(ctx, master.addr); err != nil {
		t.Fatalf("the sentinel set did not settle: %v", err)
	}
	return s
}

// startNode starts a data node, a replica of master unless master is "".
func (s *Sentinel) startNode(master string) *sentinelProc {
	conf := ""
	if master != "" {
		conf = "replicaof 127.0.0.1 " + portOf(master) + "\n"
	}
	p := s.startProc(false, conf)
	return p
}

// startProc writes a configuration file (sentinels rewrite theirs) and
// starts redis-server on it.
func (s *Sentinel) startProc(sentinel bool, extra string) *sentinelProc {
	s.t.Helper()
	dir, err := os.MkdirTemp("", "gitgate-sentinel-")
	if err != nil {
		s.t.Fatal(err)
	}
	p := &sentinelProc{dir: dir}
	// Registered before the process starts: stop finds the directory.
	if sentinel {
		s.sents = append(s.sents, p)
	} else {
		s.nodes = append(s.nodes, p)
	}
	p.addr, p.proc = launchRedisOnFreePort(s.t, func(addr string) []string {
		conf := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\nloglevel notice\ndaemonize no\n",
			portOf(addr), p.dir, filepath.Join(p.dir, "redis.log"))
		if !sentinel {
			conf += "save \"\"\nappendonly no\nrepl-diskless-sync yes\nrepl-diskless-sync-delay 0\n"
		}
		path := filepath.Join(p.dir, "redis.conf")
		if err := os.WriteFile(path, []byte(conf+extra), 0o600); err != nil {
			s.t.Fatal(err)
		}
		if sentinel {
			return []string{path, "--sentinel"}
		}
		return []string{path}
	})
	return p
}

func (s *Sentinel) stop() {
	for _, p := range append(slices.Clone(s.sents), s.nodes...) {
		if p.proc != nil {
			_ = p.proc.cmd.Process.Signal(syscall.SIGCONT) // a paused process dies too
			p.proc.kill()
		}
		if s.t.Failed() {
			if b, err := os.ReadFile(filepath.Join(p.dir, "redis.log")); err == nil {
				s.t.Logf("log of %s (last 2000 bytes):\n%s", p.addr, tail(b, 2000))
			}
		}
		_ = os.RemoveAll(p.dir)
	}
}

// settled waits until master is the master every sentinel names, it has a
// replica in sync, and every sentinel knows that replica (as a healthy one)
// and the two other sentinels: from then on a failover can happen.
func (s *Sentinel) settled(ctx context.Context, master string) error {
	return pollUntil(ctx, func(ctx context.Context) error {
		if err := nodeSynced(ctx, master); err != nil {
			return err
		}
		for _, a := range s.Addrs {
			if err := s.sentinelSees(ctx, a, master); err != nil {
				return fmt.Errorf("sentinel %s: %w", a, err)
			}
		}
		return nil
	})
}

// sentinelSees checks one sentinel's view: master is its master, with a
// healthy replica and two other sentinels.
func (s *Sentinel) sentinelSees(ctx context.Context, addr, master string) error {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	got, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
	if err != nil {
		return err
	}
	if a := net.JoinHostPort(got[0], got[1]); a != master {
		return fmt.Errorf("names master %s, want %s", a, master)
	}
	m, err := c.Master(ctx, s.MasterName).Result()
	if err != nil {
		return err
	}
	if m["num-other-sentinels"] != "2" || m["flags"] != "master" {
		return fmt.Errorf("master state %v", m)
	}
	reps, err := c.Replicas(ctx, s.MasterName).Result()
	if err != nil {
		return err
	}
	for _, r := range reps {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			return nil
		}
	}
	return fmt.Errorf("no healthy replica known: %v", reps)
}

// nodeSynced checks that addr is a master with a replica online that
// acknowledged its stream within the last second (under load the offsets
// are never equal at one instant).
func nodeSynced(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	f := infoFields(info)
	if f["role"] != "master" || f["connected_slaves"] == "0" || f["connected_slaves"] == "" {
		return fmt.Errorf("%s: role %q with %q replicas", addr, f["role"], f["connected_slaves"])
	}
	r := f["slave0"]
	if !strings.Contains(r, "state=online") || !(strings.HasSuffix(r, ",lag=0") || strings.HasSuffix(r, ",lag=1")) {
		return fmt.Errorf("%s: replica not in sync: %q (master offset %s)", addr, r, f["master_repl_offset"])
	}
	return nil
}

// Master returns the current master's host:port, as the first sentinel
// that answers names it.
func (s *Sentinel) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, a := range s.Addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: a, MaxRetries: -1})
		got, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		_ = c.Close()
		if err == nil {
			return net.JoinHostPort(got[0], got[1]), nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", a, err))
	}
	return "", errors.Join(errs...)
}

// Failover asks a sentinel to fail over (SENTINEL FAILOVER) and returns the
// new master once the replica is promoted, every sentinel names it, and the
// old master has become its replica and caught up. Another Failover may
// follow at once: it retries while the sentinels still refresh their view
// of the replica (NOGOODSLAVE, INPROG).
func (s *Sentinel) Failover(ctx context.Context) (string, error) {
	old, err := s.Master(ctx)
	if err != nil {
		return "", err
	}
	var next string
	for _, p := range s.nodes {
		if p.addr != old {
			next = p.addr
		}
	}
	ctx, cancel := context.WithTimeout(ctx, sentinelDeadline)
	defer cancel()
	err = pollUntil(ctx, func(ctx context.Context) error {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0], MaxRetries: -1})
		defer func() { _ = c.Close() }()
		return c.Failover(ctx, s.MasterName).Err() // INPROG or NOGOODSLAVE: sentinels still settling
	})
	if err != nil {
		return "", fmt.Errorf("SENTINEL FAILOVER: %w", err)
	}
	err = pollUntil(ctx, func(ctx context.Context) error {
		for _, a := range s.Addrs {
			c := redis.NewSentinelClient(&redis.Options{Addr: a, MaxRetries: -1})
			got, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
			_ = c.Close()
			if err != nil {
				return err
			}
			if m := net.JoinHostPort(got[0], got[1]); m != next {
				return fmt.Errorf("sentinel %s names %s", a, m)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("after SENTINEL FAILOVER: %w", err)
	}
	// The sentinels turn the old master into a replica only after it has
	// reported the master role for a while (8s and more); the harness does
	// at once what they would do.
	c := redis.NewClient(&redis.Options{Addr: old, MaxRetries: -1})
	err = c.ReplicaOf(ctx, "127.0.0.1", portOf(next)).Err()
	_ = c.Close()
	if err != nil {
		return "", fmt.Errorf("REPLICAOF on the old master %s: %w", old, err)
	}
	if err := pollUntil(ctx, func(ctx context.Context) error { return nodeSynced(ctx, next) }); err != nil {
		return "", fmt.Errorf("after SENTINEL FAILOVER: %w", err)
	}
	return next, nil
}

// Client returns a failover client of the set (through the sentinels),
// with go-redis' defaults, closed when the test ends.
func (s *Sentinel) Client() redis.UniversalClient {
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Nodes returns the data nodes' host:port (the first master first).
func (s *Sentinel) Nodes() []string {
	out := make([]string, len(s.nodes))
	for i, p := range s.nodes {
		out[i] = p.addr
	}
	return out
}

// Pause stops the data node at addr (SIGSTOP), as a process that hangs or
// a network partition would, until resume (SIGCONT) is called; the test's
// end resumes it too.
func (s *Sentinel) Pause(addr string) (resume func()) {
	s.t.Helper()
	for _, p := range s.nodes {
		if p.addr == addr {
			if err := p.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				s.t.Fatal(err)
			}
			return func() { _ = p.proc.cmd.Process.Signal(syscall.SIGCONT) }
		}
	}
	s.t.Fatalf("no data node %s", addr)
	return nil
}

// pollUntil calls check every 50ms until it returns nil or ctx ends, and
// returns ctx's error with check's last one.
func pollUntil(ctx context.Context, check func(context.Context) error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// infoFields parses an INFO section into its fields.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
