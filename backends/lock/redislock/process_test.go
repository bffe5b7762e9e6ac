package redislock

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/internal/backendtest"
)

// The environment of a helper process started by TestTwoProcesses.
const (
	helperEnv       = "GITGATE_REDISLOCK_HELPER"        // "1" makes TestHelperProcess run
	helperPrefixEnv = "GITGATE_REDISLOCK_HELPER_PREFIX" // the Locker's key prefix
	helperFileEnv   = "GITGATE_REDISLOCK_HELPER_FILE"   // the shared log file
	helperRounds    = 30                                // acquisitions per process
)

// record is one critical section logged by a helper process.
type record struct {
	fence      int64
	pid        int
	start, end int64 // wall clock, ns
}

// TestTwoProcesses runs two OS processes (this test binary, re-executed)
// that contend for one key through Redis and log their critical sections to
// one file; the sections must not overlap and their fences must grow.
func TestTwoProcesses(t *testing.T) {
	c := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c)
	file := filepath.Join(t.TempDir(), "log")
	cmds, outs := make([]*exec.Cmd, 2), make([]bytes.Buffer, 2)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
		cmds[i].Env = append(os.Environ(), helperEnv+"=1", helperPrefixEnv+"="+prefix, helperFileEnv+"="+file)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper process: %v\n%s", err, outs[i].String())
		}
	}
	recs := readRecords(t, file)
	checkRecords(t, recs, cmds[0].Process.Pid, cmds[1].Process.Pid)
}

func checkRecords(t *testing.T, recs []record, pid1, pid2 int) {
	t.Helper()
	if len(recs) != 2*helperRounds {
		t.Fatalf("%d critical sections logged, want %d", len(recs), 2*helperRounds)
	}
	slices.SortFunc(recs, func(a, b record) int { return int(a.start - b.start) })
	count, switches := map[int]int{}, 0
	for i, r := range recs {
		count[r.pid]++
		if r.fence != int64(i+1) {
			t.Fatalf("section %d (pid %d) has fence %d, want %d", i, r.pid, r.fence, i+1)
		}
		if i > 0 && recs[i-1].end > r.start {
			t.Fatalf("sections overlap: %+v and %+v", recs[i-1], r)
		}
		if i > 0 && recs[i-1].pid != r.pid {
			switches++
		}
	}
	if count[pid1] != helperRounds || count[pid2] != helperRounds || switches == 0 {
		t.Fatalf("sections per pid %v, %d hand-overs between processes; want %d each from %d and %d, interleaved",
			count, switches, helperRounds, pid1, pid2)
	}
}

func readRecords(t *testing.T, file string) []record {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []record
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r record
		if _, err := fmt.Sscan(sc.Text(), &r.fence, &r.pid, &r.start, &r.end); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestHelperProcess is the body of a helper process; in a normal test run
// it does nothing.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	c := backendtest.Redis(t)
	prefix := os.Getenv(helperPrefixEnv)
	l := New(c, Options{Prefix: prefix, TTL: 5 * time.Second, RetryInterval: 2 * time.Millisecond})
	barrier(t, c, prefix+"ready")
	for range helperRounds {
		if err := logSection(t.Context(), l, os.Getenv(helperFileEnv)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond) // give the other process its turn
	}
}

// barrier returns once both helper processes have reached it.
func barrier(t *testing.T, c *redis.Client, key string) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Incr(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	for n := int64(0); n < 2; time.Sleep(time.Millisecond) {
		var err error
		if n, err = c.Get(ctx, key).Int64(); err != nil {
			t.Fatalf("waiting for the other helper: %v", err)
		}
	}
}

// logSection holds the lock for about a millisecond and appends the section
// to file while still holding it.
func logSection(ctx context.Context, l *Locker, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	le, err := l.Acquire(ctx, "ws")
	if err != nil {
		return err
	}
	defer le.Release(ctx)
	start := time.Now().UnixNano()
	time.Sleep(time.Millisecond)
	end := time.Now().UnixNano()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	line := strconv.FormatInt(le.Fence(), 10) + " " + strconv.Itoa(os.Getpid()) + " " +
		strconv.FormatInt(start, 10) + " " + strconv.FormatInt(end, 10) + "\n"
	if _, err := f.WriteString(line); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
