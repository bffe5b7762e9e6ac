package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/testkit"
)

const pathEnv = "PATH=/usr/bin:/bin"

func TestExecEnvIsExactlyRequested(t *testing.T) {
	t.Setenv("GITGATE_TEST_CANARY", "leaked")
	p, info := newSandbox(t)
	res := run(t, p, info, sandbox.ExecRequest{Path: "/usr/bin/env", Env: []string{"A=1", "B=2"}})
	if got := string(res.Stdout); got != "A=1\nB=2\n" {
		t.Errorf("env output = %q, want exactly \"A=1\\nB=2\\n\"", got)
	}
	if bytes.Contains(res.Stdout, []byte("CANARY")) {
		t.Error("the parent's environment leaked into the command")
	}

	// A nil Env is an empty environment, not the parent's.
	res = run(t, p, info, sandbox.ExecRequest{Path: "/usr/bin/env"})
	if len(res.Stdout) != 0 {
		t.Errorf("nil Env: env printed %q, want nothing", res.Stdout)
	}
}

func TestExecDirStdinExitCode(t *testing.T) {
	p, info := newSandbox(t)
	wantRoot, err := filepath.EvalSymlinks(info.Root)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, p, info, sandbox.ExecRequest{Path: "/bin/pwd", Args: []string{"-P"}})
	if got := strings.TrimSpace(string(res.Stdout)); got != wantRoot {
		t.Errorf("default Dir: pwd = %q, want the root %q", got, wantRoot)
	}
	res = run(t, p, info, sandbox.ExecRequest{Path: "/bin/pwd", Args: []string{"-P"}, Dir: filepath.Join(info.Root, "ws")})
	if got := strings.TrimSpace(string(res.Stdout)); got != filepath.Join(wantRoot, "ws") {
		t.Errorf("Dir ws: pwd = %q", got)
	}

	res = run(t, p, info, sandbox.ExecRequest{Path: "/bin/cat", Stdin: []byte("hello\x00world")})
	if got := string(res.Stdout); got != "hello\x00world" {
		t.Errorf("cat echoed %q, want the stdin", got)
	}
	res = run(t, p, info, sandbox.ExecRequest{Path: "/bin/cat"})
	if len(res.Stdout) != 0 {
		t.Errorf("nil Stdin: cat printed %q, want nothing", res.Stdout)
	}

	res = run(t, p, info, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}})
	if res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 3, \"out\\n\", \"err\\n\"", res.ExitCode, res.Stdout, res.Stderr)
	}
	if res.StdoutTruncated || res.StderrTruncated || res.StdoutTotalBytes != 4 {
		t.Errorf("small output reported truncated=%v/%v total=%d", res.StdoutTruncated, res.StderrTruncated, res.StdoutTotalBytes)
	}

	_, err = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: filepath.Join(info.Root, "no-such-program")})
	if err == nil {
		t.Error("Exec of a missing program succeeded")
	}
}

func TestExecOutputCapAndStderrTap(t *testing.T) {
	p, info := newSandbox(t)
	res := run(t, p, info, sandbox.ExecRequest{
		Path: "/bin/sh", Args: []string{"-c", "head -c 100000 /dev/zero; head -c 5000 /dev/zero >&2"},
		Env: []string{pathEnv}, MaxOutput: 1000,
	})
	if len(res.Stdout) != 1000 || !res.StdoutTruncated || res.StdoutTotalBytes != 100000 {
		t.Errorf("stdout: kept %d, truncated %v, total %d; want 1000, true, 100000", len(res.Stdout), res.StdoutTruncated, res.StdoutTotalBytes)
	}
	if len(res.Stderr) != 1000 || !res.StderrTruncated {
		t.Errorf("stderr: kept %d, truncated %v; want 1000, true", len(res.Stderr), res.StderrTruncated)
	}

	var tapped testkit.SyncBuffer
	res = run(t, p, info, sandbox.ExecRequest{
		Path: "/bin/sh", Args: []string{"-c", "echo one >&2; echo two >&2; head -c 3000 /dev/zero >&2"},
		Env: []string{pathEnv}, MaxOutput: 10,
		OnStderr: func(b []byte) { _, _ = tapped.Write(b) },
	})
	want := "one\ntwo\n" + strings.Repeat("\x00", 3000)
	if got := tapped.String(); got != want {
		t.Errorf("OnStderr saw %d bytes, want all %d (including those past MaxOutput)", len(got), len(want))
	}
	if string(res.Stderr) != want[:10] {
		t.Errorf("kept stderr = %q, want %q", res.Stderr, want[:10])
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	p, info := newSandbox(t)
	// Should the shell be too slow to start its background child within the
	// timeout, there is nothing to check: try again with a longer one.
	for _, timeout := range []time.Duration{500 * time.Millisecond, 2 * time.Second, 5 * time.Second} {
		pidFile := filepath.Join(t.TempDir(), "pid")
		start := time.Now()
		_, err := p.Exec(t.Context(), info.ID, sleeper(pidFile, timeout))
		if d := time.Since(start); d > testkit.Patience {
			t.Fatalf("Exec with Timeout %v returned after %v", timeout, d)
		}
		wantCategory(t, "Exec past its timeout", err, backends.Timeout)
		if _, statErr := os.Stat(pidFile); errors.Is(statErr, os.ErrNotExist) {
			t.Logf("background child not started within %v; retrying", timeout)
			continue
		}
		waitDead(t, readPid(t, pidFile))
		return
	}
	t.Fatal("the shell never started its background child")
}

func TestExecCancelKillsProcessGroup(t *testing.T) {
	p, info := newSandbox(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.Exec(ctx, info.ID, sleeper(pidFile, 0))
		done <- err
	}()
	testkit.EventuallyEvery(t, "the background child has started", 10*time.Millisecond, func() bool {
		select {
		case err := <-done:
			t.Fatalf("Exec returned before it was cancelled: %v", err)
		default:
		}
		_, err := os.Stat(pidFile)
		return err == nil
	})
	pid := readPid(t, pidFile)
	cancel()
	select {
	case err := <-done:
		wantCategory(t, "cancelled Exec", err, backends.Unavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v does not wrap context.Canceled", err)
		}
	case <-time.After(testkit.Patience):
		t.Fatal("Exec did not return after its context was cancelled")
	}
	waitDead(t, pid)

	// An Exec with an already-done context does not start anything.
	_, err := p.Exec(ctx, info.ID, sandbox.ExecRequest{Path: "/bin/true"})
	wantCategory(t, "Exec with a cancelled context", err, backends.Unavailable)
}

// --- helpers ---

func newSandbox(t *testing.T) (*local.Provider, sandbox.Info) {
	t.Helper()
	p := open(t)
	return p, create(t, p, sandbox.Owner{Project: "p"})
}

func run(t *testing.T, p *local.Provider, info sandbox.Info, req sandbox.ExecRequest) sandbox.ExecResult {
	t.Helper()
	if req.Timeout == 0 {
		req.Timeout = testkit.Patience
	}
	res, err := p.Exec(t.Context(), info.ID, req)
	if err != nil {
		t.Fatalf("Exec(%s %q): %v", req.Path, req.Args, err)
	}
	return res
}

// sleeper runs a shell that starts a background grandchild, writes its pid
// to pidFile (atomically, through a rename) and sleeps itself.
func sleeper(pidFile string, timeout time.Duration) sandbox.ExecRequest {
	return sandbox.ExecRequest{
		Path: "/bin/sh",
		Args: []string{"-c", `sleep 300 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; sleep 300`, "sh", pidFile},
		Env:  []string{pathEnv}, Timeout: timeout,
	}
}

func readPid(t *testing.T, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, name)))
	if err != nil || pid <= 1 {
		t.Fatalf("bad pid in %s: %v", name, err)
	}
	// Should the test fail before the kill, do not leave a sleeper behind.
	t.Cleanup(func() {
		if !dead(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

// waitDead waits until pid is gone: its process group was killed.
func waitDead(t *testing.T, pid int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("grandchild %d is dead (its process group killed)", pid), func() bool {
		return dead(pid)
	})
}

// dead reports whether pid no longer runs. A zombie counts as dead: whether
// it has been reaped yet depends on this machine's init.
func dead(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z' || stat[i+2] == 'X'
	}
	return false
}

// TestExecBackgroundRunsAtLowestPriority: shadow work (Background) runs at
// niceness 19, with the helpers it starts; other commands at ours.
func TestExecBackgroundRunsAtLowestPriority(t *testing.T) {
	p, info := newSandbox(t)
	niceness := func(background bool) string {
		res := run(t, p, info, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "sleep 0.1; nice"}, Env: []string{pathEnv}, Background: background})
		return strings.TrimSpace(string(res.Stdout))
	}
	ours := niceness(false)
	if ours == "19" {
		t.Skip("the tests already run at niceness 19")
	}
	if got := niceness(true); got != "19" {
		t.Fatalf("background command at niceness %q (ours %q), want 19", got, ours)
	}
}

// TestExecHelperHoldingPipesAfterSuccess: a command that exits 0 while a
// process it started keeps its output pipe open past WaitDelay (Wait's
// exec.ErrWaitDelay) answers with its own outcome, success with what it
// wrote, not an internal error; and the straggler, left in the command's
// process group, is killed.
func TestExecHelperHoldingPipesAfterSuccess(t *testing.T) {
	p, info := newSandbox(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	res, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{
		Path: "/bin/sh",
		Args: []string{"-c", `sleep 300 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; echo done`, "sh", pidFile},
		Env:  []string{pathEnv}, Timeout: testkit.Patience,
	})
	if err != nil {
		t.Fatalf("Exec of a command that exited 0 with a helper holding its stdout: %v (category %s), want its own result", err, backends.CategoryOf(err))
	}
	if res.ExitCode != 0 || string(res.Stdout) != "done\n" {
		t.Errorf("result: exit %d, stdout %q; want exit 0, stdout \"done\\n\"", res.ExitCode, res.Stdout)
	}
	waitDead(t, readPid(t, pidFile))
}

// TestExecCommandsDieWithTheirProcess: a process killed (SIGKILL) while a
// command of its sandbox runs takes the command with it, although the
// command leads its own process group: nothing it started goes on writing
// in a workspace. The process is this test binary run again as a helper.
func TestExecCommandsDieWithTheirProcess(t *testing.T) {
	if dir := os.Getenv("GITGATE_TEST_EXEC_HELPER"); dir != "" {
		p, err := local.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "p"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: "/bin/sh",
			Args: []string{"-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 300`, "sh", filepath.Join(dir, "pid")}, Env: []string{pathEnv}})
		return
	}
	dir := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^TestExecCommandsDieWithTheirProcess$", "-test.count=1")
	helper.Env = append(os.Environ(), "GITGATE_TEST_EXEC_HELPER="+dir)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	pidFile := filepath.Join(dir, "pid")
	testkit.Eventually(t, "the helper's command has started", func() bool {
		_, err := os.Stat(pidFile)
		return err == nil
	})
	pid := readPid(t, pidFile)
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitDead(t, pid)
}
