package local

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

const defaultMaxOutput = 1 << 20

// Exec runs req.Path directly (no shell) in its own process group with
// exactly req.Env. When ctx ends or req.Timeout passes, the whole group is
// killed (git starts helpers such as git-remote-http and index-pack).
func (p *Provider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	info, err := p.lookup(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	cmd, stdout, stderr := command(ctx, info, req)
	err = cmd.Run()
	res := sandbox.ExecResult{
		Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(),
		StdoutTruncated: stdout.dropped > 0, StderrTruncated: stderr.dropped > 0,
		StdoutTotalBytes: int64(stdout.buf.Len()) + stdout.dropped,
	}
	return finish(ctx, res, err)
}

func command(ctx context.Context, info sandbox.Info, req sandbox.ExecRequest) (*exec.Cmd, *capWriter, *capWriter) {
	limit := req.MaxOutput
	if limit <= 0 {
		limit = defaultMaxOutput
	}
	cmd := exec.CommandContext(ctx, req.Path, req.Args...)
	cmd.Env = append([]string{}, req.Env...) // never nil: nil would inherit ours
	cmd.Dir = req.Dir
	if cmd.Dir == "" {
		cmd.Dir = info.Root
	}
	if req.Stdin != nil {
		cmd.Stdin = bytes.NewReader(req.Stdin)
	}
	stdout := &capWriter{limit: limit}
	stderr := &capWriter{limit: limit, tap: req.OnStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd, stdout, stderr
}

func finish(ctx context.Context, res sandbox.ExecResult, err error) (sandbox.ExecResult, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return res, &backends.Error{Category: backends.Timeout, Message: "the command ran past its time limit and was stopped", Err: ctxErr}
		}
		return res, &backends.Error{Category: backends.Unavailable, Message: "the operation was cancelled", Err: ctxErr}
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.ExitCode = exitErr.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, backends.Errorf(backends.Internal, "run command: %w", err)
	}
	return res, nil
}

// capWriter keeps the first limit bytes and counts the rest; tap, if set,
// sees everything.
type capWriter struct {
	buf     bytes.Buffer
	limit   int
	dropped int64
	tap     func([]byte)
}

func (w *capWriter) Write(b []byte) (int, error) {
	if w.tap != nil {
		w.tap(b)
	}
	room := w.limit - w.buf.Len()
	if room >= len(b) {
		w.buf.Write(b)
		return len(b), nil
	}
	if room > 0 {
		w.buf.Write(b[:room])
	}
	w.dropped += int64(len(b) - max(room, 0))
	return len(b), nil
}
