package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

const defaultMaxOutput = 1 << 20

// devNull is an empty stdin shared by every command.
var devNull, _ = os.Open(os.DevNull)

// Exec runs req.Path directly (no shell) in its own process group with
// exactly req.Env. When ctx ends or req.Timeout passes, the whole group is
// killed (git starts helpers such as git-remote-http and index-pack). The
// watchers are context.AfterFunc and time.AfterFunc, which cost nothing
// until they fire: commands are short and frequent.
func (p *Provider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if !req.Around.Empty() {
		return p.execAround(ctx, id, req)
	}
	return p.exec(ctx, id, req)
}

func (p *Provider) exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	info, err := p.lookup(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return sandbox.ExecResult{}, stopError(err)
	}
	cmd, stdout, stderr, limited := command(info, req)
	if err := cmd.Start(); err != nil {
		return sandbox.ExecResult{}, backends.Errorf(backends.Internal, "start %s: %w", req.Path, err)
	}
	pgid := cmd.Process.Pid // the command leads its own group (Setpgid)
	p.usage.started(id, pgid)
	if req.MaxFileBytes > 0 && !limited {
		_ = setFileLimit(cmd.Process.Pid, req.MaxFileBytes)
	}
	if req.Background {
		// Niceness 19 for the leader; the helpers it starts inherit it.
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 19)
	}
	var stopped atomic.Pointer[error]
	kill := func(why error) {
		if stopped.CompareAndSwap(nil, &why) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	stopWatch := context.AfterFunc(ctx, func() { kill(ctx.Err()) })
	if req.Timeout > 0 {
		timer := time.AfterFunc(req.Timeout, func() { kill(context.DeadlineExceeded) })
		defer timer.Stop()
	}
	err = cmd.Wait()
	stopWatch()
	if st := cmd.ProcessState; st != nil {
		p.usage.ended(id, pgid, st.UserTime()+st.SystemTime())
	} else {
		p.usage.ended(id, pgid, 0)
	}
	res := sandbox.ExecResult{
		Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(),
		StdoutTruncated: stdout.dropped > 0, StderrTruncated: stderr.dropped > 0,
		StdoutTotalBytes: stdout.skipped + int64(stdout.buf.Len()) + stdout.dropped,
	}
	if why := stopped.Load(); why != nil && killed(err) {
		return res, stopError(*why)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// Helpers of the group still hold the pipes: they outlived their
		// command and its answer, so they go too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	return finish(res, err)
}

// killed reports whether the command ended by a signal. A kill that fires
// just after the command finished on its own finds no process; the command's
// own result then stands.
func killed(err error) bool {
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return false
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// command builds the command of req; limited reports whether its file-size
// limit (req.MaxFileBytes) is already set by a wrapper (prlimit).
func command(info sandbox.Info, req sandbox.ExecRequest) (cmd *exec.Cmd, stdout, stderr *capWriter, limited bool) {
	limit := req.MaxOutput
	if limit <= 0 {
		limit = defaultMaxOutput
	}
	path, args, limited := withFileLimit(req.MaxFileBytes, req.Path, req.Args)
	cmd = exec.Command(path, args...)
	cmd.Env = append([]string{}, req.Env...) // never nil: nil would inherit ours
	cmd.Dir = req.Dir
	if cmd.Dir == "" {
		cmd.Dir = info.Root
	}
	if req.Stdin != nil {
		cmd.Stdin = bytes.NewReader(req.Stdin)
	} else if devNull != nil {
		cmd.Stdin = devNull // an *os.File is passed as is; nil would open /dev/null per command
	}
	stdout = &capWriter{limit: limit, skip: max(req.SkipStdout, 0)}
	stderr = &capWriter{limit: limit, tap: req.OnStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Pdeathsig: a command dies with the process that started it. A git
	// the process leaves running (it leads its own group) would go on
	// writing in the workspace after the process's journal entries were
	// settled by others, and a clone stopped later by a signal removes its
	// files, which by then may be a new clone's. (The signal follows the
	// OS thread that started the command; Go ends threads only for
	// goroutines locked to them, which gitgate has none of.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second // helpers that keep our pipes open after git exits
	return cmd, stdout, stderr, limited
}

// stopError is the error of a command stopped by its deadline or by the
// caller.
func stopError(why error) error {
	if errors.Is(why, context.DeadlineExceeded) {
		return &backends.Error{Category: backends.Timeout, Message: "the command ran past its time limit and was stopped", Err: why}
	}
	return &backends.Error{Category: backends.Unavailable, Message: "the operation was cancelled", Err: why}
}

// finish turns the command's end into its result: its exit code, or an
// error when it could not be run or waited for.
//
// exec.ErrWaitDelay is not such an error. The command has no Context (Exec
// kills its group itself), so Wait returns ErrWaitDelay only when the
// command exited with status 0 and something it started kept its output
// pipes open past WaitDelay (a command stopped by Exec's kill ends by a
// signal: an *exec.ExitError, answered by stopError before this). The
// command's own outcome is known, success, and what it wrote before it
// exited was read during the delay; only the stragglers' output is cut.
func finish(res sandbox.ExecResult, err error) (sandbox.ExecResult, error) {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.ExitCode = exitErr.ExitCode()
		return res, nil
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return res, nil
	}
	if err != nil {
		return res, backends.Errorf(backends.Internal, "run command: %w", err)
	}
	return res, nil
}

// capWriter drops the first skip bytes, keeps the next limit bytes and
// counts the rest; tap, if set, sees everything. It implements io.ReaderFrom so that os/exec's copy from
// the child's pipe uses a small pooled buffer instead of allocating 32 KiB
// per stream per command (which was half of all the gateway's allocations).
type capWriter struct {
	buf     bytes.Buffer
	limit   int
	dropped int64
	skip    int64 // bytes still to skip
	skipped int64
	tap     func([]byte)
}

func (w *capWriter) Write(b []byte) (int, error) {
	if w.tap != nil {
		w.tap(b)
	}
	n := len(b)
	if w.skip > 0 {
		k := min(w.skip, int64(len(b)))
		w.skip, w.skipped, b = w.skip-k, w.skipped+k, b[k:]
	}
	room := w.limit - w.buf.Len()
	if room >= len(b) {
		w.buf.Write(b)
		return n, nil
	}
	if room > 0 {
		w.buf.Write(b[:room])
	}
	w.dropped += int64(len(b) - max(room, 0))
	return n, nil
}

var readBuffers = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// ReadFrom copies r into w until EOF.
func (w *capWriter) ReadFrom(r io.Reader) (int64, error) {
	bp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bp)
	var total int64
	for {
		n, err := r.Read(*bp)
		if n > 0 {
			total += int64(n)
			_, _ = w.Write((*bp)[:n])
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
