package e2b_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/gitgate/gitgate/internal/testkit"
)

// The tests here hold the provider to how E2B's real envd (0.6.13)
// behaves, which the local E2B now mimics: a deadline kills only the
// process envd started, a client that goes away stops nothing, envd adds
// its own and the template's environment, uploads are 0644, an unknown
// user is refused.

// marker returns an environment variable unique to one test's commands:
// every process of their trees inherits it (also through env -i, which
// keeps what gitgate gives).
func marker(t *testing.T) string {
	return "GITGATE_TEST_MARKER=" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// procsWith lists the processes on this machine whose environment holds
// the marker.
func procsWith(mark string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		environ, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(environ), "\x00"), mark) {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
			if fields := strings.Fields(string(stat)); len(fields) > 2 && fields[2] == "Z" {
				continue // a zombie is dead; its parent has yet to reap it
			}
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// waitNoneLeft waits until no process carries the marker.
func waitNoneLeft(t *testing.T, mark string) {
	t.Helper()
	var left []string
	testkit.Eventually(t, "no process of the command is left", func() bool { left = procsWith(mark); return len(left) == 0 })
}

func created(t *testing.T, p *e2b.Provider) string {
	t.Helper()
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func quick(c *e2b.ProviderConfig) { c.KillGrace, c.StopWait = 300*time.Millisecond, 5*time.Second }

// TestDeadlineKillsTheWholeTree: at its deadline a command dies with every
// process it started — children that go on like git-remote-http under a
// clone, and children that ignore SIGTERM — while envd kills only the
// process it started.
func TestDeadlineKillsTheWholeTree(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	p := newProviderWith(t, s, quick)
	id := created(t, p)
	for name, script := range map[string]string{
		"children":         `sh -c 'sleep 600; echo child' & sleep 600 & sleep 600`,
		"ignoring SIGTERM": `trap '' TERM; sh -c 'sleep 600' & sleep 600`,
	} {
		t.Run(name, func(t *testing.T) {
			mark := marker(t)
			_, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", script},
				Env: []string{"PATH=/usr/bin:/bin", mark}, Timeout: 500 * time.Millisecond})
			wantCategory(t, err, backends.Timeout)
			waitNoneLeft(t, mark)
		})
	}
}

// TestCancelStopsTheCommand: a call cancelled while its command runs
// stops the command and all its children (envd would let them run on).
func TestCancelStopsTheCommand(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	p := newProviderWith(t, s, quick)
	id := created(t, p)
	mark := marker(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := p.Exec(ctx, id, sandbox.ExecRequest{Path: "/bin/sh",
		Args: []string{"-c", `sh -c 'sleep 600' & sleep 600 & echo running >&2; wait`},
		Env:  []string{"PATH=/usr/bin:/bin", mark}, Timeout: 10 * time.Minute,
		OnStderr: func([]byte) { cancel() }})
	wantCategory(t, err, backends.Unavailable)
	if errors.Is(err, sandbox.ErrMayStillRun) {
		t.Fatalf("the command was not confirmed stopped: %v", err)
	}
	waitNoneLeft(t, mark)
	// The sandbox serves the next command at once.
	if res, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/bin/true", Timeout: time.Minute}); err != nil || res.ExitCode != 0 {
		t.Fatalf("next command: %+v, %v", res, err)
	}
}

// TestUnconfirmedStopIsReported: when envd cannot be reached to stop a
// cancelled command, the error says the command may still run
// (sandbox.ErrMayStillRun), and nothing else runs in that sandbox until it
// is confirmed gone — then the next call stops it and runs.
func TestUnconfirmedStopIsReported(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	p := newProviderWith(t, s, func(c *e2b.ProviderConfig) { c.KillGrace, c.StopWait = 100*time.Millisecond, 500*time.Millisecond })
	id := created(t, p)
	mark := marker(t)
	var mu sync.Mutex
	gate := make(chan struct{}) // closed: envd's List and SendSignal answer again
	blocked := false
	t.Cleanup(func() {
		mu.Lock()
		if blocked {
			close(gate)
		}
		mu.Unlock()
	})
	s.SetHook(func(_, path string) {
		mu.Lock()
		b, g := blocked, gate
		mu.Unlock()
		if b && (path == "/process.Process/List" || path == "/process.Process/SendSignal") {
			select {
			case <-g:
			case <-time.After(time.Minute):
			}
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := p.Exec(ctx, id, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", `sleep 600 & echo running >&2; wait`},
		Env: []string{"PATH=/usr/bin:/bin", mark}, Timeout: 10 * time.Minute,
		OnStderr: func([]byte) {
			mu.Lock()
			blocked = true
			mu.Unlock()
			cancel()
		}})
	if !errors.Is(err, sandbox.ErrMayStillRun) || backends.CategoryOf(err) != backends.Unavailable {
		t.Fatalf("error %v: want unavailable marked ErrMayStillRun", err)
	}
	if len(procsWith(mark)) == 0 {
		t.Fatal("the command is gone although it could not be stopped (the test proves nothing)")
	}
	// Nothing runs beside it: not even a removal.
	err = p.RemoveAll(t.Context(), id, "/home/user/gitgate/ws/anything")
	if !errors.Is(err, sandbox.ErrMayStillRun) || !errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("a command ran beside one that may still run: %v", err)
	}
	mu.Lock()
	blocked = false
	close(gate)
	mu.Unlock()
	if res, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/bin/true", Timeout: time.Minute}); err != nil || res.ExitCode != 0 {
		t.Fatalf("once envd answers again: %+v, %v", res, err)
	}
	waitNoneLeft(t, mark)
}

// TestEnvironmentIsExactlyGitgates: a command sees the environment gitgate
// gives it and nothing of envd's (PATH, HOME, USER, LOGNAME) or of the
// template's (E2B_SANDBOX_ID, GIT_*), also with standard input and at low
// priority.
func TestEnvironmentIsExactlyGitgates(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	p := newProvider(t, s)
	id := created(t, p)
	want := []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "WITH_EQUALS=a=b c"}
	for name, req := range map[string]sandbox.ExecRequest{
		"plain":      {},
		"stdin":      {Stdin: []byte("input")},
		"background": {Background: true},
	} {
		t.Run(name, func(t *testing.T) {
			req.Path, req.Env, req.Timeout = "/usr/bin/env", want, time.Minute
			res, err := p.Exec(t.Context(), id, req)
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("%+v, %v", res, err)
			}
			got := strings.Split(strings.TrimSuffix(string(res.Stdout), "\n"), "\n")
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("environment %q, want exactly %q", got, want)
			}
		})
	}
}

// TestUploadsArePrivateAtUse: envd creates uploads 0644; the credential
// file and standard input are 0600 when the command uses them.
func TestUploadsArePrivateAtUse(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	p := newProvider(t, s)
	id := created(t, p)
	file := "/home/user/gitgate/tmp/.credential-test"
	if err := p.WriteSecret(t.Context(), id, file, []byte("not-a-real-token\n")); err != nil {
		t.Fatal(err)
	}
	res, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/usr/bin/stat", Args: []string{"-c", "%a", file}, Timeout: time.Minute})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "600" {
		t.Fatalf("credential file mode %q (%v), want 600", res.Stdout, err)
	}
	res, err = p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/usr/bin/stat", Args: []string{"-L", "-c", "%a", "/proc/self/fd/0"},
		Stdin: []byte("a commit message"), Timeout: time.Minute})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "600" {
		t.Fatalf("standard input's mode %q (%v), want 600", res.Stdout, err)
	}
}

// tmpFiles lists the files in the sandbox's tmp directory on this machine.
func tmpFiles(t *testing.T, s *e2bfake.Server, id string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), id, "gitgate", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestRefusedWriteLeavesNoUpload: a write refused in the sandbox (path
// escapes, target is a directory), or whose command never ran, leaves no
// upload behind.
func TestRefusedWriteLeavesNoUpload(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	p := newProvider(t, s)
	id := created(t, p)
	root := "/home/user/gitgate/ws/w"
	if res, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/bin/mkdir", Args: []string{"-p", root + "/dir"}, Timeout: time.Minute}); err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	_, err := p.WriteFile(t.Context(), id, root, "../escape.txt", big)
	wantCategory(t, err, backends.Forbidden)
	_, err = p.WriteFile(t.Context(), id, root, "dir", big)
	wantCategory(t, err, backends.InvalidArgument)
	_, err = p.WriteFile(t.Context(), id, "/home/user/gitgate/ws/missing", "a.txt", big)
	wantCategory(t, err, backends.NotFound)
	s.CutStreamsAfter(1) // the script's stream breaks off
	_, err = p.WriteFile(t.Context(), id, root, "cut.txt", big)
	wantCategory(t, err, backends.Unavailable)
	s.CutStreamsAfter(0)
	if left := tmpFiles(t, s, id); len(left) != 0 {
		t.Fatalf("uploads left in the sandbox: %q", left)
	}
	if created, err := p.WriteFile(t.Context(), id, root, "ok.txt", []byte("ok")); err != nil || !created {
		t.Fatalf("a good write: %v, %v", created, err)
	}
	if left := tmpFiles(t, s, id); len(left) != 0 {
		t.Fatalf("uploads left in the sandbox: %q", left)
	}
}

// TestWrongUserIsTheOperatorsError: a sandbox.e2b.user the template does
// not have is reported once, naming the key, as unavailable (not the
// agent's credentials), logged once at ERROR, and no sandbox is created
// for later calls.
func TestWrongUserIsTheOperatorsError(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	var logs bytes.Buffer
	p := newProviderWith(t, s, func(c *e2b.ProviderConfig) {
		c.User = "nobody-here"
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for range 3 {
		_, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}})
		wantCategory(t, err, backends.Unavailable)
		if !strings.Contains(err.Error(), "sandbox.e2b.user") || !strings.Contains(err.Error(), "invalid username: 'nobody-here'") || !errors.Is(err, backends.ErrNotStarted) {
			t.Fatalf("error %v", err)
		}
	}
	creates := 0
	for _, r := range s.Records() {
		if r.Method == "POST" && r.Path == "/sandboxes" {
			creates++
		}
	}
	if creates != 1 || len(s.Sandboxes()) != 0 {
		t.Fatalf("%d sandboxes created, %d left running; want 1 (to find out) and none", creates, len(s.Sandboxes()))
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "sandbox.e2b.user") {
		t.Fatalf("%d ERROR lines: %s", n, logs.String())
	}
	// Found through the API (made by a process configured right), the
	// sandbox refuses the user's uploads (401): the same error.
	id := created(t, newProvider(t, s))
	other := newProviderWith(t, s, func(c *e2b.ProviderConfig) { c.User = "nobody-here"; c.Logger = slog.New(slog.DiscardHandler) })
	_, err := other.WriteFile(t.Context(), id, "/home/user/gitgate/ws", "a.txt", []byte("a"))
	wantCategory(t, err, backends.Unavailable)
	if !strings.Contains(err.Error(), "sandbox.e2b.user") || !strings.Contains(err.Error(), "error looking up user 'nobody-here'") {
		t.Fatalf("upload as an unknown user: %v", err)
	}
}

// TestDomainOfTheAnswer: envd is reached on the domain E2B's answers name
// for the sandbox, as E2B's SDKs do: sandbox.<domain> for E2B's own
// domains, <port>-<id>.<domain> for others; the configured one otherwise.
func TestDomainOfTheAnswer(t *testing.T) {
	t.Parallel()
	for domain, wantHost := range map[string]string{
		"":              "sandbox.home.test",
		"home.test":     "sandbox.home.test",
		"e2b.dev":       "sandbox.e2b.dev",
		"eu.other.test": "49983-ID.eu.other.test",
	} {
		t.Run(domain, func(t *testing.T) {
			s := fake(t, e2bfake.Config{Domain: domain})
			addr := strings.TrimPrefix(s.URL(), "http://")
			dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr) // every host is the local E2B
			}
			p := newProviderWith(t, s, func(c *e2b.ProviderConfig) {
				c.EnvdURL = "http://sandbox.home.test"
				c.HTTP = &http.Client{Transport: &http.Transport{DialContext: dial}}
			})
			id := created(t, p)
			for _, find := range []bool{false, true} {
				if find { // a provider that did not create it asks the API
					p = newProviderWith(t, s, func(c *e2b.ProviderConfig) {
						c.EnvdURL = "http://sandbox.home.test"
						c.HTTP = &http.Client{Transport: &http.Transport{DialContext: dial}}
					})
				}
				before := len(s.Records())
				if _, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/bin/true", Timeout: time.Minute}); err != nil {
					t.Fatal(err)
				}
				for _, r := range s.Records()[before:] {
					if r.Path == "/process.Process/Start" && r.Host != strings.Replace(wantHost, "ID", id, 1) {
						t.Fatalf("envd reached at %s, want %s", r.Host, wantHost)
					}
				}
			}
		})
	}
}

// TestTokenNeverInTheEnvironment: the environment travels as arguments of
// env(1), which envd logs; a command given the git token in it is refused
// before anything is sent.
func TestTokenNeverInTheEnvironment(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	p := newProvider(t, s)
	id := created(t, p)
	before := len(s.Records())
	_, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Path: "/usr/bin/git", Env: []string{"GITGATE_TOKEN=not-a-real-token"}, Timeout: time.Minute})
	wantCategory(t, err, backends.Internal)
	if strings.Contains(err.Error(), "not-a-real-token") {
		t.Fatalf("the error shows the token: %v", err)
	}
	for _, r := range s.Records()[before:] {
		if strings.Contains(string(r.Body), "not-a-real-token") {
			t.Fatalf("the token was sent: %s %s", r.Method, r.Path)
		}
	}
}

// TestCloneFromAHangingRemote is the case seen on the real envd: git clone
// from a remote that never answers, past its deadline and when its call is
// cancelled; neither git nor its git-remote-http is left running.
func TestCloneFromAHangingRemote(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	requests := 0
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		select { // never answers while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(remote.Close)
	t.Cleanup(func() { close(release) })
	s := fake(t, e2bfake.Config{})
	p := newProviderWith(t, s, quick)
	id := created(t, p)
	for i, cancelled := range []bool{false, true} {
		mark := marker(t)
		before := func() int { mu.Lock(); defer mu.Unlock(); return requests }()
		ctx, cancel := context.WithCancel(t.Context())
		req := sandbox.ExecRequest{Path: "/usr/bin/git", Args: []string{"clone", "--", remote.URL + "/repo.git", "/home/user/gitgate/ws/c" + strconv.Itoa(i)},
			Env: []string{"PATH=/usr/bin:/bin", "HOME=/home/user/gitgate/home", "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", mark}, Timeout: 2 * time.Second}
		if cancelled {
			req.Timeout = 10 * time.Minute
			go func() { // cancel once git-remote-http asks the remote
				testkit.Eventually(t, "the remote is asked", func() bool { mu.Lock(); defer mu.Unlock(); return requests > before })
				cancel()
			}()
		}
		_, err := p.Exec(ctx, id, req)
		cancel()
		if cancelled {
			wantCategory(t, err, backends.Unavailable)
		} else {
			wantCategory(t, err, backends.Timeout)
		}
		if errors.Is(err, sandbox.ErrMayStillRun) {
			t.Fatalf("not confirmed stopped: %v", err)
		}
		if mu.Lock(); requests == before {
			t.Fatal("git never reached the remote (the test proves nothing)")
		}
		mu.Unlock()
		waitNoneLeft(t, mark)
	}
}
