package gitcmd

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestCredentialHelper(t *testing.T) {
	remote := &Remote{CredentialHosts: []string{"https://github.com", "https://ghe.example:8443"}, Token: testToken}
	answer := "username=x-access-token\npassword=" + testToken + "\n"
	tests := []struct {
		name, action, input, want string
	}{
		{"allowed host", "get", "protocol=https\nhost=github.com\n\n", answer},
		{"allowed host, EOF without blank line", "get", "protocol=https\nhost=github.com\n", answer},
		{"allowed host, host first, extra attributes", "get", "capability[]=authtype\nhost=github.com\nprotocol=https\nwwwauth[]=Basic realm=\"GitHub\"\n\n", answer},
		{"allowed host:port", "get", "protocol=https\nhost=ghe.example:8443\n\n", answer},
		{"other host", "get", "protocol=https\nhost=evil.example\n\n", ""},
		{"allowed host as prefix", "get", "protocol=https\nhost=github.com.evil.example\n\n", ""},
		{"allowed host with other port", "get", "protocol=https\nhost=github.com:8443\n\n", ""},
		{"host:port host without port", "get", "protocol=https\nhost=ghe.example\n\n", ""},
		{"host:port host with other port", "get", "protocol=https\nhost=ghe.example:9443\n\n", ""},
		{"http instead of https", "get", "protocol=http\nhost=github.com\n\n", ""},
		{"empty host", "get", "protocol=https\nhost=\n\n", ""},
		{"no host", "get", "protocol=https\n\n", ""},
		{"no protocol", "get", "host=github.com\n\n", ""},
		{"host with trailing space", "get", "protocol=https\nhost=github.com \n\n", ""},
		{"host with CR", "get", "protocol=https\nhost=github.com\r\n\n", ""},
		{"attributes after the blank line are ignored", "get", "protocol=https\nhost=evil.example\n\nhost=github.com\n", ""},
		{"empty input", "get", "", ""},
		{"store", "store", "protocol=https\nhost=github.com\nusername=x\npassword=y\n\n", ""},
		{"erase", "erase", "protocol=https\nhost=github.com\n\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runHelperBothWays(t, credentialEnv(remote), tt.action, tt.input, tt.want)
		})
	}
}

func TestCredentialHelperUsernameAndHosts(t *testing.T) {
	in := "protocol=https\nhost=github.com\n\n"
	runHelperBothWays(t, credentialEnv(&Remote{CredentialHosts: []string{"https://github.com"}, Username: "bot", Token: testToken}),
		"get", in, "username=bot\npassword="+testToken+"\n")
	runHelperBothWays(t, credentialEnv(&Remote{Token: testToken}), "get", in, "")
	if env := credentialEnv(&Remote{Schemes: []string{"https"}, CredentialHosts: []string{"https://github.com"}, Username: "bot"}); env != nil {
		t.Errorf("credentialEnv without token = %q, want nil", env)
	}
}

func TestCredentialHelperTokenFile(t *testing.T) {
	dir := t.TempDir()
	in := "protocol=https\nhost=github.com\n\n"
	for content, token := range map[string]string{
		"file-token\n":         "file-token",
		"file-token":           "file-token",
		"first-line\nsecond\n": "first-line",
	} {
		file := filepath.Join(dir, "token")
		writeFile(t, file, content, 0o600)
		env := credentialEnv(&Remote{CredentialHosts: []string{"https://github.com"}, Token: testToken, TokenFile: file})
		if strings.Contains(strings.Join(env, "\n"), testToken) {
			t.Fatalf("with TokenFile the token must not be in the environment: %q", env)
		}
		runHelperBothWays(t, env, "get", in, "username=x-access-token\npassword="+token+"\n")
		runHelperBothWays(t, env, "get", "protocol=https\nhost=evil.example\n\n", "")
	}
}

// TestCredentialFillWithRealGit asks real git for credentials through the
// exact command and environment Build produces.
func TestCredentialFillWithRealGit(t *testing.T) {
	remote := &Remote{Schemes: []string{"https"}, CredentialHosts: []string{"https://github.com"}, Token: testToken}
	tests := []struct {
		name, input string
		ok          bool
	}{
		{"allowed host", "protocol=https\nhost=github.com\n\n", true},
		{"allowed URL", "url=https://github.com/o/r.git\n\n", true},
		{"other host", "protocol=https\nhost=evil.example\n\n", false},
		{"other host URL", "url=https://evil.example/o/r.git\n\n", false},
		{"cleartext http", "protocol=http\nhost=github.com\n\n", false},
		{"other port", "protocol=https\nhost=github.com:444\n\n", false},
		{"CVE-2020-5260 newline in URL", "url=https://evil.example/?%0ahost=github.com\n\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			c := Build(DefaultGitPath, home, home, Invocation{Args: []string{"credential", "fill"}, Remote: remote})
			cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
			var stdout, stderr bytes.Buffer
			cmd.Dir, cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = home, c.Env, strings.NewReader(tt.input), &stdout, &stderr
			err := cmd.Run()
			if tt.ok {
				if err != nil || !strings.Contains(stdout.String(), "\nusername=x-access-token\npassword="+testToken+"\n") {
					t.Fatalf("git credential fill: %v\nstdout %q\nstderr %q; want the token", err, stdout.String(), stderr.String())
				}
				return
			}
			if err == nil {
				t.Errorf("git credential fill succeeded for a host the helper must not answer: %q", stdout.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), testToken) {
				t.Errorf("token leaked to a disallowed host: stdout %q stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

// TestTokenOnlyReachesAllowedHostOverHTTP runs git ls-remote against local
// HTTP servers that demand Basic auth and checks which ones get the token,
// including when the allowed server redirects to another one.
func TestTokenOnlyReachesAllowedHostOverHTTP(t *testing.T) {
	other := newAuthServer(t, "")
	allowed := newAuthServer(t, "")
	redirecting := newAuthServer(t, other.URL+"/o/r.git/info/refs?service=git-upload-pack")
	creds := []string{allowed.URL, redirecting.URL}
	remote := &Remote{Schemes: []string{"http"}, CredentialHosts: creds, Token: testToken}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+testToken))

	for _, s := range []*authServer{allowed, other, redirecting} {
		home := t.TempDir()
		c := Build(DefaultGitPath, home, home, Invocation{Args: []string{"ls-remote", "--", s.URL + "/o/r.git"}, Remote: remote})
		cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
		cmd.Dir, cmd.Env = home, c.Env
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("ls-remote %s succeeded, want failure (the servers never serve a repository):\n%s", s.URL, out)
		}
		if strings.Contains(string(out), testToken) {
			t.Errorf("token in git output: %s", out)
		}
	}
	if got := allowed.auths(); len(got) != 1 || got[0] != wantAuth {
		t.Errorf("allowed host received Authorization %q, want exactly [%q]", got, wantAuth)
	}
	if got := other.auths(); len(got) != 0 || other.hits() != 1 {
		t.Errorf("disallowed host: %d requests with Authorization %q; want 1 request (the direct one, not the redirect) and no credentials", other.hits(), got)
	}
}

// authServer answers 401 to requests without credentials (or redirects),
// and 403 to requests with them, recording the Authorization headers.
type authServer struct {
	*httptest.Server
	mu       sync.Mutex
	n        int
	received []string
}

func newAuthServer(t *testing.T, redirect string) *authServer {
	s := &authServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.n++
		if a := r.Header.Get("Authorization"); a != "" {
			s.received = append(s.received, a)
		}
		s.mu.Unlock()
		switch {
		case redirect != "":
			http.Redirect(w, r, redirect, http.StatusFound)
		case r.Header.Get("Authorization") == "":
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *authServer) auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}
func (s *authServer) hits() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

// runHelperBothWays runs the inline helper as git does ("sh -c '<helper> get'",
// git's credential_do + prepare_shell_cmd) and as an "$@" wrapper, with env
// plus PATH, and checks its output and exit status.
func runHelperBothWays(t *testing.T, env []string, action, input, want string) {
	t.Helper()
	body := credentialHelper[1:]
	for _, argv := range [][]string{
		{"-c", body + " " + action, body + " " + action},
		{"-c", body + ` "$@"`, body, action},
	} {
		cmd := exec.CommandContext(t.Context(), "/bin/sh", argv...)
		var stdout, stderr bytes.Buffer
		cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = append([]string{"PATH=/usr/bin:/bin"}, env...), strings.NewReader(input), &stdout, &stderr
		if err := cmd.Run(); err != nil || stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("helper %s with %q: err %v, stdout %q, stderr %q; want exit 0, stdout %q", action, input, err, stdout.String(), stderr.String(), want)
		}
	}
}
