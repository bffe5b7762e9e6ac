package gitremote

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

const testToken = "tok-3f9a1c7e5b2d"

var demoFiles = map[string]string{"README.md": "hello\n", "docs/guide.md": "guide\n"}

// startServer starts a server with a "demo" repo and checks on cleanup that
// the token leaked into neither logs nor request records.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = filepath.Join(t.TempDir(), "root")
	}
	logs := &testkit.SyncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRepo(t.Context(), "demo", demoFiles); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if strings.Contains(logs.String(), testToken) {
			t.Error("token appears in log output")
		}
		if strings.Contains(fmt.Sprintf("%+v", s.Requests()), testToken) {
			t.Error("token appears in request records")
		}
	})
	return s
}

// client runs git like a user would, with a from-scratch environment.
type client struct {
	t   *testing.T
	env []string
}

// newClient returns a git client; if user or token is non-empty they are
// supplied via a GIT_ASKPASS script (never in the URL).
func newClient(t *testing.T, user, token string) *client {
	home := t.TempDir()
	env := []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"HOME=" + home, "PATH=/usr/bin:/bin", "LC_ALL=C"}
	if user != "" || token != "" {
		script := filepath.Join(home, "askpass.sh")
		body := "#!/bin/sh\ncase \"$1\" in Username*) echo \"$ASKPASS_USER\";; *) echo \"$ASKPASS_TOKEN\";; esac\n"
		if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, "GIT_ASKPASS="+script, "ASKPASS_USER="+user, "ASKPASS_TOKEN="+token)
	}
	return &client{t: t, env: env}
}

func (c *client) try(dir string, args ...string) (string, error) {
	args = append([]string{"-c", "protocol.allow=never", "-c", "protocol.http.allow=always",
		"-c", "user.name=Tester", "-c", "user.email=tester@example.invalid"}, args...)
	cmd := exec.CommandContext(c.t.Context(), "/usr/bin/git", args...)
	cmd.Env, cmd.Dir = c.env, dir
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *client) git(dir string, args ...string) string {
	c.t.Helper()
	out, err := c.try(dir, args...)
	if err != nil {
		c.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
