package filelock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
)

func newLocker(t *testing.T, dir string) *Locker {
	t.Helper()
	l, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMutualExclusionAndFencesInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Two Lockers on one directory behave like two processes' Lockers.
	ls := []*Locker{newLocker(t, dir), newLocker(t, dir)}
	const n = 40
	var (
		inside atomic.Bool
		mu     sync.Mutex
		fences []int64 // appended under the lock under test; mu only for the race detector
		wg     sync.WaitGroup
		errs   = make(chan error, n)
	)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
			defer cancel()
			le, err := ls[i%2].Acquire(ctx, "project/ws")
			if err != nil {
				errs <- err
				return
			}
			if inside.Swap(true) {
				errs <- errors.New("two holders inside the critical section at once")
			}
			mu.Lock()
			fences = append(fences, le.Fence())
			mu.Unlock()
			runtime.Gosched()
			inside.Store(false)
			if err := le.Release(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(fences) != n {
		t.Fatalf("%d grants, want %d", len(fences), n)
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fences not strictly increasing in grant order: %v", fences)
		}
	}
}

func TestAcquireHonoursContext(t *testing.T) {
	t.Parallel()
	l := newLocker(t, t.TempDir())
	held, err := l.Acquire(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = l.Acquire(ctx, "k")
	if backends.CategoryOf(err) != backends.Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire past its deadline: %v, want a timeout", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := l.Acquire(cctx, "k")
		done <- err
	}()
	ccancel()
	select {
	case err := <-done:
		if backends.CategoryOf(err) != backends.Canceled {
			t.Fatalf("cancelled Acquire: %v, want canceled", err)
		}
	case <-time.After(testkit.Patience):
		t.Fatal("a cancelled Acquire did not return")
	}
	// Another key is independent; a released key is free again.
	other, err := l.Acquire(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	again, err := l.Acquire(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if again.Fence() <= held.Fence() || again.Lost() != nil {
		t.Fatalf("fence %d after %d, Lost %v", again.Fence(), held.Fence(), again.Lost())
	}
	_ = again.Release(context.Background())
}

func TestFencesSurviveANewLocker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var last int64
	for range 3 {
		l := newLocker(t, dir)
		le, err := l.Acquire(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if le.Fence() <= last {
			t.Fatalf("fence %d after %d", le.Fence(), last)
		}
		last = le.Fence()
		_ = le.Release(context.Background())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	if len(files) != 1 {
		t.Fatalf("lock files %v, want one", files)
	}
}

func TestOddKeysMapToSafeNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := newLocker(t, dir)
	for _, k := range []string{"../../etc/passwd", "a/b\x00c", "", string(bytes.Repeat([]byte("k"), 5000))} {
		le, err := l.Acquire(context.Background(), k)
		if err != nil {
			t.Fatalf("Acquire(%.20q): %v", k, err)
		}
		_ = le.Release(context.Background())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Fatalf("%d files in the lock directory, want 4", len(entries))
	}
}

// The environment of a helper process started by TestTwoProcesses.
const (
	helperEnv     = "GITGATE_FILELOCK_HELPER"     // "1" makes TestHelperProcess run
	helperDirEnv  = "GITGATE_FILELOCK_HELPER_DIR" // the lock directory
	helperFileEnv = "GITGATE_FILELOCK_HELPER_LOG" // the shared log file
	helperRounds  = 30
)

type record struct {
	fence      int64
	pid        int
	start, end int64 // wall clock, ns
}

// TestTwoProcesses runs two OS processes (this test binary, re-executed)
// that contend for one key through lock files in one directory and log
// their critical sections; the sections must not overlap, and their fences
// must grow by one in grant order.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "log")
	cmds, outs := make([]*exec.Cmd, 2), make([]bytes.Buffer, 2)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
		cmds[i].Env = append(os.Environ(), helperEnv+"=1", helperDirEnv+"="+filepath.Join(dir, "locks"), helperFileEnv+"="+logFile)
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
	recs := readRecords(t, logFile)
	if len(recs) != 2*helperRounds {
		t.Fatalf("%d critical sections logged, want %d", len(recs), 2*helperRounds)
	}
	slices.SortFunc(recs, func(a, b record) int { return int(a.fence - b.fence) })
	count, switches := map[int]int{}, 0
	for i, r := range recs {
		count[r.pid]++
		if i > 0 && recs[i-1].pid != r.pid {
			switches++
		}
		if r.fence != int64(i+1) {
			t.Fatalf("section %d (pid %d) has fence %d, want %d", i, r.pid, r.fence, i+1)
		}
		if i > 0 && recs[i-1].end > r.start {
			t.Fatalf("sections overlap: %+v and %+v", recs[i-1], r)
		}
	}
	pid1, pid2 := cmds[0].Process.Pid, cmds[1].Process.Pid
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
	l, err := New(os.Getenv(helperDirEnv), Options{MaxPoll: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	barrier(t, filepath.Dir(os.Getenv(helperFileEnv)))
	for range helperRounds {
		if err := logSection(t.Context(), l, os.Getenv(helperFileEnv)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // give the other process its turn
	}
}

// logSection holds the lock for about a millisecond and appends the section
// to file while still holding it.
func logSection(ctx context.Context, l *Locker, file string) error {
	ctx, cancel := context.WithTimeout(ctx, testkit.Patience)
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

// barrier returns once both helper processes have reached it: each leaves
// a file in dir and waits for the other's.
func barrier(t *testing.T, dir string) {
	if err := os.WriteFile(filepath.Join(dir, "ready-"+strconv.Itoa(os.Getpid())), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Polled every millisecond, so that both start their rounds together.
	testkit.EventuallyEvery(t, "the other helper process is ready", time.Millisecond, func() bool {
		ready, _ := filepath.Glob(filepath.Join(dir, "ready-*"))
		return len(ready) >= 2
	})
}
