package e2b_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// sandboxEnvd creates a secure sandbox on the fake and returns its envd
// client.
func sandboxEnvd(t *testing.T, s *e2bfake.Server) *e2b.Envd {
	t.Helper()
	sb, err := api(t, s, apiKey).Create(t.Context(), e2b.NewSandbox{TemplateID: "gitgate", Timeout: 600, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	return &e2b.Envd{BaseURL: s.URL(), SandboxID: sb.SandboxID, AccessToken: sb.EnvdAccessToken, User: "user"}
}

func sh(script string) e2b.ExecRequest {
	return e2b.ExecRequest{Cmd: "/bin/sh", Args: []string{"-c", script}, Cwd: "/home/user", Timeout: 10 * time.Second}
}

// TestRunStreamsAndExits: output arrives on both streams, the exit code is
// a result, the working directory and paths are the sandbox's, stderr is
// tapped as it comes, and a missing program is exit 127 (as envd does).
func TestRunStreamsAndExits(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	e := sandboxEnvd(t, s)
	var tapped bytes.Buffer
	req := sh("echo hello; pwd; echo err >&2; echo $GREETING; exit 3")
	req.Env = map[string]string{"GREETING": "hi"}
	req.OnStderr = func(b []byte) { tapped.Write(b) }
	res, err := e.Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "hello\n/home/user\nhi\n" || string(res.Stderr) != "err\n" || res.ExitCode != 3 || tapped.String() != "err\n" {
		t.Fatalf("result %+v (stdout %q, stderr %q, tapped %q)", res, res.Stdout, res.Stderr, tapped.String())
	}
	res, err = e.Run(t.Context(), e2b.ExecRequest{Cmd: "/usr/bin/no-such-program", Cwd: "/home/user"})
	if err != nil || res.ExitCode != 127 {
		t.Fatalf("missing program: %+v, %v", res, err)
	}
}

// TestRunCapsOutput: output past MaxOutput is counted, not kept.
func TestRunCapsOutput(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	e := sandboxEnvd(t, s)
	req := sh("head -c 3000000 /dev/zero")
	req.MaxOutput = 1000
	res, err := e.Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 1000 || !res.StdoutTruncated || res.StdoutTotalBytes != 3000000 {
		t.Fatalf("kept %d bytes, truncated %v, total %d", len(res.Stdout), res.StdoutTruncated, res.StdoutTotalBytes)
	}
}

// TestRunFaults: each fault has its category — past the deadline envd kills
// the command (timeout); a silent command survives on keepalives; a bad
// access token is unauthenticated; an unknown user too; a bad cwd is an
// invalid argument; a stream cut before its end frame is unavailable (the
// command may have run); a dead or unknown sandbox is unavailable and
// marked ErrSandboxGone.
func TestRunFaults(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	e := sandboxEnvd(t, s)
	ctx := t.Context()

	slow := sh("sleep 600; echo late") // TestDeadlineKillsTheWholeTree checks that nothing is left
	slow.Timeout = 300 * time.Millisecond
	res, err := e.Run(ctx, slow)
	wantCategory(t, err, backends.Timeout)
	if strings.Contains(string(res.Stdout), "late") {
		t.Fatal("the deadline was not enforced")
	}

	quiet := *e
	quiet.Keepalive = time.Second
	res, err = quiet.Run(ctx, sh("sleep 4; echo done"))
	if err != nil || string(res.Stdout) != "done\n" {
		t.Fatalf("a command silent for 4 s with 1 s keepalives: %+v, %v", res, err)
	}

	bad := *e
	bad.AccessToken = "not-the-token"
	_, err = bad.Run(ctx, sh("true"))
	wantCategory(t, err, backends.Unauthenticated)

	stranger := *e
	stranger.User = "mallory"
	_, err = stranger.Run(ctx, sh("true"))
	wantCategory(t, err, backends.Unauthenticated)

	nowhere := sh("true")
	nowhere.Cwd = "/home/user/missing"
	_, err = e.Run(ctx, nowhere)
	wantCategory(t, err, backends.InvalidArgument)

	s.CutStreamsAfter(2)
	_, err = e.Run(ctx, sh("echo one; echo two; echo three"))
	wantCategory(t, err, backends.Unavailable)
	if !strings.Contains(err.Error(), "may have run") {
		t.Fatalf("a cut stream does not say the command may have run: %v", err)
	}
	s.CutStreamsAfter(0)

	unknown := *e
	unknown.SandboxID = "inosuchsandbox"
	_, err = unknown.Run(ctx, sh("true"))
	wantCategory(t, err, backends.Unavailable)
	if !errors.Is(err, e2b.ErrSandboxGone) {
		t.Fatalf("an unknown sandbox is not marked gone: %v", err)
	}
	s.Kill(e.SandboxID)
	_, err = e.Run(ctx, sh("true"))
	if !errors.Is(err, e2b.ErrSandboxGone) {
		t.Fatalf("a dead sandbox is not marked gone: %v", err)
	}
}

// TestFiles: upload and download (whole and by range, size reported), a
// missing file is not found.
func TestFiles(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	e := sandboxEnvd(t, s)
	ctx := t.Context()
	if err := e.Upload(ctx, "/home/user/dir/a.txt", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	data, size, err := e.Download(ctx, "/home/user/dir/a.txt", 0, 0)
	if err != nil || string(data) != "0123456789" || size != 10 {
		t.Fatalf("download: %q, %d, %v", data, size, err)
	}
	data, size, err = e.Download(ctx, "/home/user/dir/a.txt", 3, 4)
	if err != nil || string(data) != "3456" || size != 10 {
		t.Fatalf("range download: %q, %d, %v", data, size, err)
	}
	res, err := e.Run(ctx, sh("cat /home/user/dir/a.txt"))
	if err != nil || string(res.Stdout) != "0123456789" {
		t.Fatalf("the command does not see the upload: %q, %v", res.Stdout, err)
	}
	_, _, err = e.Download(ctx, "/home/user/nope", 0, 0)
	wantCategory(t, err, backends.NotFound)
}
