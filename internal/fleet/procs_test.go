package fleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gitgateBinary builds bin/gitgate into a temporary directory once per
// test run and returns its path.
func gitgateBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gitgate-fleet-bin-") //nolint:usetesting // one binary for the run: the first test's TempDir would go with it
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gitgate")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/gitgate/gitgate/cmd/gitgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%w: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build gitgate: %v", buildErr)
	}
	return binPath
}

// freeAddr returns a loopback host:port nothing listens on (yet).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one part of the fleet run as a child process: started again
// with the same arguments after each stop, its standard error (the JSON
// log) kept per incarnation in its own file.
type proc struct {
	t      testing.TB
	name   string
	args   []string
	env    []string
	logDir string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current incarnation has exited
	waitErr error
	starts  int
	logs    []string // every incarnation's log file
	// peakKB is the largest VmHWM of the incarnations that exited (each
	// incarnation's own peak is read just before it is stopped).
	peakKB int64
}

func newProc(t testing.TB, name string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, args: args, env: env, logDir: t.TempDir()}
	t.Cleanup(func() {
		p.mu.Lock()
		cmd, done := p.cmd, p.done
		p.mu.Unlock()
		if cmd != nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return p
}

// start starts a new incarnation; the previous one must have exited.
func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			p.t.Fatalf("%s: started while it runs", p.name)
		}
	}
	p.starts++
	logPath := filepath.Join(p.logDir, fmt.Sprintf("%s.%d.log", p.name, p.starts))
	f, err := os.Create(logPath)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(gitgateBinary(p.t), p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("%s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.logs = cmd, done, append(p.logs, logPath)
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
}

// pid is the running incarnation's process id (0 once it exited).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// stop sends sig to the running incarnation and waits (up to
// testkit.Patience) for it to exit; it returns how the process ended (nil
// for a clean exit) and how long it took.
func (p *proc) stop(sig syscall.Signal) (time.Duration, error) {
	p.t.Helper()
	if pid := p.pid(); pid != 0 {
		if m, err := readMemory(pid); err == nil {
			p.mu.Lock()
			p.peakKB = max(p.peakKB, m.hwmKB)
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		p.t.Fatalf("%s: stopped before it started", p.name)
	}
	began := time.Now()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	select {
	case <-done:
	case <-time.After(testkit.Patience):
		p.t.Fatalf("%s did not exit within %s of %v", p.name, testkit.Patience, sig)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(began), p.waitErr
}

// exited reports whether the running incarnation has exited on its own,
// and how.
func (p *proc) exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false, nil
	}
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// logText is everything the process logged, over every incarnation.
func (p *proc) logText() string {
	p.mu.Lock()
	paths := append([]string(nil), p.logs...)
	p.mu.Unlock()
	var b strings.Builder
	for _, path := range paths {
		data, _ := os.ReadFile(path)
		b.Write(data)
	}
	return b.String()
}

// tail is the last n lines the process logged.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.logText(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// memory is a process's resident memory from /proc/<pid>/status.
type memory struct {
	rssKB, hwmKB int64 // VmRSS (now) and VmHWM (the peak)
}

func readMemory(pid int) (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			m.rssKB = kb
		case "VmHWM":
			m.hwmKB = kb
		}
	}
	return m, nil
}

// peak is the largest VmHWM over every incarnation so far (the running
// one included).
func (p *proc) peak() int64 {
	p.mu.Lock()
	peak := p.peakKB
	p.mu.Unlock()
	if pid := p.pid(); pid != 0 {
		if m, err := readMemory(pid); err == nil {
			peak = max(peak, m.hwmKB)
		}
	}
	return peak
}

// waitServing waits until the gRPC health service at addr says SERVING
// for the whole server ("").
func waitServing(t testing.TB, what, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testkit.EventuallyNil(t, what+" reports SERVING", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", res.GetStatus())
		}
		return nil
	})
}
