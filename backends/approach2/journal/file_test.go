package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestDirSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := newDir(t, dir, DirOptions{})
	b := begin(t, Key{"p", "w", "k"}, "commit", map[string]string{"message": "m"}, 3)
	e := startStore(t, d, b, Proceed)
	open := startStore(t, d, begin(t, Key{"p", "w", "open"}, "push", nil, 3), Proceed)
	if err := d.Settle(testCtx(t), e.ID, 3, Succeeded, []byte(`{"sha":"abc"}`), "", ""); err != nil {
		t.Fatal(err)
	}
	d2 := newDir(t, dir, DirOptions{})
	r := startStore(t, d2, b, Replay)
	if r.ID != e.ID || !jsonEqual(t, r.Result, []byte(`{"sha":"abc"}`)) {
		t.Fatalf("replay after reopen = %+v", r)
	}
	left, err := d2.Unsettled(testCtx(t), 0)
	if err != nil || len(left) != 1 || left[0].ID != open.ID {
		t.Fatalf("Unsettled after reopen = %+v, %v", left, err)
	}
	next := startStore(t, d2, begin(t, Key{"p", "w", "next"}, "push", nil, 3), Proceed)
	if next.ID <= open.ID {
		t.Fatalf("id %d after reopen, want above %d", next.ID, open.ID)
	}
}

func TestDirPrunesExpiredEntries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := newDir(t, dir, DirOptions{Retention: time.Hour})
	ctx := testCtx(t)
	settled := begin(t, Key{"p", "w", "old"}, "push", nil, 1)
	e := startStore(t, d, settled, Proceed)
	if err := d.Settle(ctx, e.ID, 1, Succeeded, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	running := startStore(t, d, begin(t, Key{"p", "w", "running"}, "push", nil, 1), Proceed)
	recent := startStore(t, d, begin(t, Key{"p", "w", "recent"}, "push", nil, 1), Proceed)

	// Leftovers of a process that died while starting an entry.
	orphanID := filepath.Join(dir, dirIDs, "999999")
	orphanTmp := filepath.Join(dir, dirTmp, "deadbeef")
	for _, f := range []string{orphanID, orphanTmp} {
		if err := os.WriteFile(f, []byte(keyHash(Key{"p", "w", "never"})), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Hour)
	for _, f := range []string{orphanID, orphanTmp} {
		if err := os.Chtimes(f, long, long); err != nil {
			t.Fatal(err)
		}
	}

	if n, err := d.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("Prune within retention = %d, %v; want 0", n, err)
	}
	d.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := d.Settle(ctx, recent.ID, 1, Succeeded, nil, "", ""); err != nil { // settled "now", two hours on
		t.Fatal(err)
	}
	if n, err := d.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if _, err := d.Get(ctx, e.ID); err == nil {
		t.Fatal("a pruned entry is still found")
	}
	for _, id := range []int64{running.ID, recent.ID} {
		if _, err := d.Get(ctx, id); err != nil {
			t.Fatalf("Get(%d) after pruning: %v", id, err)
		}
	}
	for _, f := range []string{orphanID, orphanTmp, d.idPath(e.ID)} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("%s survived pruning: %v", f, err)
		}
	}
	// The key of a pruned entry is free again.
	again := startStore(t, d, settled, Proceed)
	if again.ID <= recent.ID {
		t.Fatalf("new entry id %d, want above %d", again.ID, recent.ID)
	}
}

func TestDirStartPrunesOpportunistically(t *testing.T) {
	t.Parallel()
	d := newDir(t, t.TempDir(), DirOptions{Retention: time.Minute})
	b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
	e := startStore(t, d, b, Proceed)
	if err := d.Settle(testCtx(t), e.ID, 1, Succeeded, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return time.Now().Add(time.Hour) }
	startStore(t, d, begin(t, Key{"p", "w", "other"}, "push", nil, 1), Proceed)
	if _, err := d.Get(testCtx(t), e.ID); err == nil {
		t.Fatal("Start did not prune the expired entry")
	}
}

func TestDirIgnoresLeftoverMarkers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := newDir(t, dir, DirOptions{})
	marker := d.markerPath(keyHash(Key{"p", "w", "crashed"}))
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if es, err := d.Unsettled(testCtx(t), 0); err != nil || len(es) != 0 {
		t.Fatalf("Unsettled = %+v, %v; want none", es, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a fresh marker was removed (its Start may still be running): %v", err)
	}
	long := time.Now().Add(-time.Hour)
	if err := os.Chtimes(marker, long, long); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Unsettled(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("an old marker without an entry survived: %v", err)
	}
}

// The environment of a helper process started by TestDirAcrossProcesses.
const (
	dirHelperEnv    = "GITGATE_JOURNAL_DIR_HELPER" // the shared journal directory
	dirHelperLogEnv = "GITGATE_JOURNAL_DIR_LOG"    // the shared log file
	dirHelperKeys   = 25
	dirHelpers      = 3
)

// TestDirAcrossProcesses runs three OS processes (this test binary,
// re-executed) on one journal directory; each starts the same 25 keys
// (StartWait), settles what it proceeds with and records what it saw.
// Each key must proceed in exactly one process, every other process must
// replay that process's result, and all must agree on the entry's id.
func TestDirAcrossProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "log")
	cmds, outs := make([]*exec.Cmd, dirHelpers), make([]bytes.Buffer, dirHelpers)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestDirHelperProcess$", "-test.count=1", "-test.v")
		cmds[i].Env = append(os.Environ(), dirHelperEnv+"="+filepath.Join(dir, "journal"), dirHelperLogEnv+"="+logFile)
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
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type seen struct {
		proceeded []int   // pids
		results   []int   // the pid each one got as result
		ids       []int64 // the entry id each one saw
	}
	keys := map[int]*seen{}
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		var key, pid, result int
		var id int64
		var outcome string
		if _, err := fmt.Sscan(sc.Text(), &key, &pid, &outcome, &id, &result); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		s := keys[key]
		if s == nil {
			s = &seen{}
			keys[key] = s
		}
		if outcome == "proceed" {
			s.proceeded = append(s.proceeded, pid)
		}
		s.results = append(s.results, result)
		s.ids = append(s.ids, id)
	}
	if lines != dirHelpers*dirHelperKeys || len(keys) != dirHelperKeys {
		t.Fatalf("%d log lines for %d keys, want %d for %d", lines, len(keys), dirHelpers*dirHelperKeys, dirHelperKeys)
	}
	ids := map[int64]int{}
	for key, s := range keys {
		if len(s.proceeded) != 1 {
			t.Fatalf("key %d proceeded in %v, want exactly one process", key, s.proceeded)
		}
		for i := range s.results {
			if s.results[i] != s.proceeded[0] || s.ids[i] != s.ids[0] {
				t.Fatalf("key %d: results %v, ids %v; want all %d and one id", key, s.results, s.ids, s.proceeded[0])
			}
		}
		if other, dup := ids[s.ids[0]]; dup {
			t.Fatalf("keys %d and %d share entry id %d", key, other, s.ids[0])
		}
		ids[s.ids[0]] = key
	}
	d := newDir(t, filepath.Join(dir, "journal"), DirOptions{})
	if es, err := d.Unsettled(testCtx(t), 0); err != nil || len(es) != 0 {
		t.Fatalf("Unsettled = %d entries, %v; want none", len(es), err)
	}
}

// TestDirHelperProcess is the body of a helper process; in a normal test
// run it does nothing.
func TestDirHelperProcess(t *testing.T) {
	dir := os.Getenv(dirHelperEnv)
	if dir == "" {
		return
	}
	d := newDir(t, dir, DirOptions{PollInterval: 5 * time.Millisecond})
	pid := os.Getpid()
	for i := range dirHelperKeys {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b := begin(t, Key{"p", "w", "key-" + strconv.Itoa(i)}, "push", pushReq{Branch: "main"}, 1)
		e, o, err := d.StartWait(ctx, b)
		if err != nil {
			t.Fatalf("StartWait key %d: %v", i, err)
		}
		result := pid
		switch o {
		case Proceed:
			if err := d.Settle(ctx, e.ID, 1, Succeeded, []byte(strconv.Itoa(pid)), "", ""); err != nil {
				t.Fatalf("Settle key %d: %v", i, err)
			}
		case Replay:
			if result, err = strconv.Atoi(string(e.Result)); err != nil {
				t.Fatalf("replayed result %q: %v", e.Result, err)
			}
		default:
			t.Fatalf("key %d: outcome %v", i, o)
		}
		cancel()
		line := fmt.Sprintf("%d %d %s %d %d\n", i, pid, o, e.ID, result)
		f, err := os.OpenFile(os.Getenv(dirHelperLogEnv), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
}
