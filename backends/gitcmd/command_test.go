package gitcmd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

const testToken = "ghs_SECRETtoken0123456789"

// mustHarden is the reviewer's list of -c settings every invocation needs
// (threats.md §1.1); each must appear exactly once as a "-c", value pair.
var mustHarden = []string{
	"protocol.allow=never", "protocol.file.allow=never",
	"core.hooksPath=/dev/null", "core.fsmonitor=false",
	"core.sshCommand=/bin/false", "core.gitProxy=", "core.askPass=",
	"core.pager=cat", "core.editor=false", "sequence.editor=false",
	"core.protectNTFS=true", "core.protectHFS=true",
	"transfer.fsckObjects=true", "fetch.fsckObjects=true",
	"submodule.recurse=false", "fetch.recurseSubmodules=false",
	"gc.auto=0", "maintenance.auto=false", "http.sslVerify=true",
	"gpg.program=false", "commit.gpgSign=false", "credential.helper=",
	"http.proxy=", "remote.origin.proxy=", "http.extraHeader=", "http.curloptResolve=",
}

// baseEnv is the documented environment of every invocation.
var baseEnv = []string{
	"PATH=/usr/bin:/bin", "HOME=/sb/home", "TMPDIR=/sb/tmp", "LC_ALL=C", "LANG=C",
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null",
	"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false",
	"GIT_NO_REPLACE_OBJECTS=1", "GIT_LITERAL_PATHSPECS=1", "GIT_PROTOCOL_FROM_USER=0",
	"GIT_CEILING_DIRECTORIES=/",
}

func TestBuildArgvLayout(t *testing.T) {
	user := []string{"commit", "--cleanup=verbatim", "-m", "--upload-pack=touch /tmp/pwn", "--", "-c", "core.hooksPath=/tmp/evil"}
	for _, remote := range []*Remote{nil, {Schemes: []string{"https"}, CredentialHosts: []string{"https://github.com"}, Token: testToken}} {
		cmd := Build(DefaultGitPath, "/sb/home", "/sb/tmp", Invocation{GitDir: "/sb/git", WorkTree: "/sb/ws", Args: user, Remote: remote})
		if cmd.Path != "/usr/bin/git" {
			t.Errorf("Path = %q, want /usr/bin/git", cmd.Path)
		}
		gitDir := slices.Index(cmd.Args, "--git-dir=/sb/git")
		if gitDir < 0 || cmd.Args[gitDir+1] != "--work-tree=/sb/ws" || !slices.Equal(cmd.Args[gitDir+2:], user) {
			t.Fatalf("argv must end with --git-dir, --work-tree and then exactly the caller's args; got %q", cmd.Args)
		}
		pre := cmd.Args[:gitDir]
		if !slices.Equal(pre[len(pre)-2:], []string{"--no-pager", "--literal-pathspecs"}) {
			t.Errorf("--no-pager --literal-pathspecs must come right before --git-dir; got %q", pre)
		}
		settings := map[string]int{}
		for i := 0; i < len(pre)-2; i += 2 {
			if pre[i] != "-c" {
				t.Fatalf("before --git-dir only -c pairs are allowed; argv[%d] = %q in %q", i, pre[i], pre)
			}
			settings[pre[i+1]]++
		}
		for _, kv := range mustHarden {
			if settings[kv] != 1 {
				t.Errorf("hardening -c %s appears %d times, want once", kv, settings[kv])
			}
		}
		keys := map[string][]string{}
		for kv := range settings {
			k, v, _ := strings.Cut(kv, "=")
			keys[strings.ToLower(k)] = append(keys[strings.ToLower(k)], v)
		}
		for k, vs := range keys {
			if len(vs) > 1 && k != "credential.helper" {
				t.Errorf("config key %s set more than once (%q): a later value would override the hardening", k, vs)
			}
		}
		for _, a := range cmd.Args {
			if strings.Contains(a, testToken) {
				t.Errorf("token appears in argv element %q", a)
			}
		}
	}
	noTree := Build(DefaultGitPath, "/h", "/t", Invocation{Args: []string{"clone"}})
	if slices.ContainsFunc(noTree.Args, func(a string) bool { return strings.HasPrefix(a, "--git-dir") || strings.HasPrefix(a, "--work-tree") }) {
		t.Errorf("no GitDir/WorkTree: argv must not carry --git-dir/--work-tree; got %q", noTree.Args)
	}
}

func TestBuildEnvironment(t *testing.T) {
	t.Setenv("GITGATE_CANARY", "leaked")
	t.Setenv("GIT_DIR", "/evil")
	t.Setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='/evil'")
	t.Setenv("LD_PRELOAD", "/evil.so")
	tests := []struct {
		name  string
		inv   Invocation
		extra []string // variables beyond baseEnv, in any order
	}{
		{"local write", Invocation{}, []string{"GIT_ALLOW_PROTOCOL=none"}},
		{"read-only", Invocation{ReadOnly: true}, []string{"GIT_ALLOW_PROTOCOL=none", "GIT_OPTIONAL_LOCKS=0"}},
		{"identity", Invocation{Identity: &Identity{Name: "Bot", Email: "bot@x"}}, []string{"GIT_ALLOW_PROTOCOL=none",
			"GIT_AUTHOR_NAME=Bot", "GIT_AUTHOR_EMAIL=bot@x", "GIT_COMMITTER_NAME=Bot", "GIT_COMMITTER_EMAIL=bot@x"}},
		{"remote without token", Invocation{Remote: &Remote{Schemes: []string{"https"}, CredentialHosts: []string{"https://github.com"}}},
			[]string{"GIT_ALLOW_PROTOCOL=https"}},
		{"remote with token", Invocation{Remote: &Remote{Schemes: []string{"https"}, CredentialHosts: []string{"https://github.com", "https://ghe.example:8443"}, Token: testToken}},
			[]string{"GIT_ALLOW_PROTOCOL=https", "GITGATE_CRED_HOSTS=https://github.com https://ghe.example:8443", "GITGATE_CRED_USER=x-access-token", "GITGATE_TOKEN=" + testToken}},
		{"remote with token file", Invocation{Remote: &Remote{Schemes: []string{"http", "https"}, CredentialHosts: []string{"https://github.com"}, Username: "bot", Token: testToken, TokenFile: "/sb/token"}},
			[]string{"GIT_ALLOW_PROTOCOL=http:https", "GITGATE_CRED_HOSTS=https://github.com", "GITGATE_CRED_USER=bot", "GITGATE_CRED_FILE=/sb/token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := Build(DefaultGitPath, "/sb/home", "/sb/tmp", tt.inv).Env
			want := append(slices.Clone(baseEnv), tt.extra...)
			if !slices.Equal(sorted(env), sorted(want)) {
				t.Errorf("env = %q\nwant (any order) %q", env, want)
			}
		})
	}
}

func TestBuildRemoteConfig(t *testing.T) {
	tests := []struct {
		name    string
		remote  *Remote
		allow   []string // schemes with protocol.<s>.allow=always
		helper  bool
		tokenIn bool // GITGATE_TOKEN in env
	}{
		{"no remote", nil, nil, false, false},
		{"no credentials", &Remote{Schemes: []string{"https"}}, []string{"https"}, false, false},
		{"token", &Remote{Schemes: []string{"https"}, Token: testToken}, []string{"https"}, true, true},
		{"token file", &Remote{Schemes: []string{"https"}, Token: testToken, TokenFile: "/sb/token"}, []string{"https"}, true, false},
		{"http and https", &Remote{Schemes: []string{"http", "https"}, Token: testToken}, []string{"http", "https"}, true, true},
		// Through a relay: no helper and no token even when one is set, and
		// the relay's scheme allowed for this command.
		{"relay", &Remote{URL: "https://git.example/o/r.git", Schemes: []string{"https"}, Token: testToken, Relay: "http://127.0.0.1:7422/c/ggcap_x"}, []string{"https", "http"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := Build(DefaultGitPath, "/h", "/t", Invocation{Args: []string{"fetch"}, Remote: tt.remote})
			var allowed []string
			helpers := []int{}
			for i, a := range cmd.Args {
				if s, ok := strings.CutPrefix(a, "protocol."); ok && strings.HasSuffix(s, ".allow=always") {
					allowed = append(allowed, strings.TrimSuffix(s, ".allow=always"))
				}
				if strings.HasPrefix(a, "credential.helper=") && cmd.Args[i-1] == "-c" {
					helpers = append(helpers, i)
				}
			}
			if !slices.Equal(allowed, tt.allow) {
				t.Errorf("protocol.<s>.allow=always for %q, want %q", allowed, tt.allow)
			}
			wantHelpers := []int{1}
			if tt.helper {
				wantHelpers = []int{1, 2}
			}
			if len(helpers) != len(wantHelpers) || cmd.Args[helpers[0]] != "credential.helper=" {
				t.Fatalf("credential.helper settings at %v (%q), want the reset first and the helper only with credentials: %v", helpers, cmd.Args, tt.helper)
			}
			if tt.helper && cmd.Args[helpers[1]] != "credential.helper="+credentialHelper {
				t.Errorf("second credential.helper = %q, want the gateway's helper", cmd.Args[helpers[1]])
			}
			if got := slices.Contains(cmd.Env, "GITGATE_TOKEN="+testToken); got != tt.tokenIn {
				t.Errorf("GITGATE_TOKEN in env = %v, want %v", got, tt.tokenIn)
			}
			if strings.Contains(strings.Join(cmd.Args, "\x00"), testToken) {
				t.Errorf("token appears in argv %q", cmd.Args)
			}
			if r := tt.remote; r != nil && r.Relay != "" {
				if !slices.Contains(cmd.Args, "url."+r.Relay+".insteadOf="+r.URL) || slices.ContainsFunc(cmd.Env, func(e string) bool {
					return strings.HasPrefix(e, "GITGATE_CRED")
				}) || !slices.Contains(cmd.Env, "GIT_ALLOW_PROTOCOL=https:http") {
					t.Errorf("through a relay: argv %q, env %q", cmd.Args, cmd.Env)
				}
			}
		})
	}
}

// TestBuildNeutralisesRepoConfig runs real git through Build in a repository
// whose config and hooks try to run a command, and checks nothing ran. The
// same repository run by plain git proves the traps are live.
func TestBuildNeutralisesRepoConfig(t *testing.T) {
	dir := t.TempDir()
	repo, mark := filepath.Join(dir, "repo"), filepath.Join(dir, "pwned")
	setupGit(t, dir, "init", "-q", "-b", "main", repo)
	trap := filepath.Join(dir, "trap.sh")
	writeFile(t, trap, "#!/bin/sh\necho \"$0 $*\" >> "+mark+"\nexit 1\n", 0o755)
	hooks := filepath.Join(repo, ".git", "hooks")
	for _, h := range []string{"pre-commit", "commit-msg", "post-commit", "post-checkout"} {
		writeFile(t, filepath.Join(hooks, h), "#!/bin/sh\necho hook-"+h+" >> "+mark+"\n", 0o755)
	}
	cfg, err := os.OpenFile(filepath.Join(repo, ".git", "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.WriteString("[core]\n\tfsmonitor = " + trap + "\n\thooksPath = " + hooks + "\n\tpager = " + trap + "\n" +
		"[diff]\n\texternal = " + trap + "\n[gpg]\n\tprogram = " + trap + "\n[commit]\n\tgpgSign = true\n")
	if err := errors.Join(err, cfg.Close()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "f.txt"), "one\n", 0o644)

	home := t.TempDir()
	id := &Identity{Name: "Bot", Email: "bot@x"}
	steps := []struct {
		args    []string
		mayFail bool // plain "git diff" fails: see TestBuildDiffWithoutNoExtDiff
	}{
		{StatusArgs, false},
		{[]string{"add", "-A", "--", "f.txt"}, false},
		{[]string{"commit", "-q", "-m", "first"}, false},
		{[]string{"diff", "--no-ext-diff", "--no-textconv", "HEAD"}, false},
		{[]string{"diff", "HEAD"}, true},
		{[]string{"log", "-p", "-1"}, false},
	}
	for _, s := range steps {
		writeFile(t, filepath.Join(repo, "f.txt"), "changed "+strings.Join(s.args, " ")+"\n", 0o644)
		c := Build(DefaultGitPath, home, home, Invocation{GitDir: filepath.Join(repo, ".git"), WorkTree: repo, Args: s.args, Identity: id})
		cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
		cmd.Dir, cmd.Env = repo, c.Env
		if out, err := cmd.CombinedOutput(); err != nil && !s.mayFail {
			t.Fatalf("git %q through Build: %v\n%s", s.args, err, out)
		}
	}
	if b, err := os.ReadFile(mark); !os.IsNotExist(err) {
		t.Fatalf("repository config or hooks ran a command through Build: %q", b)
	}
	// Control: plain git honours the same traps.
	_, _ = plainGit(t, repo, "status")
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("control run did not trigger the fsmonitor trap, so the test proves nothing: %v", err)
	}
}

func TestBuildRefusesTransportsWithRealGit(t *testing.T) {
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.git")
	setupGit(t, dir, "init", "-q", "--bare", bare)
	remote := &Remote{Schemes: []string{"https"}, CredentialHosts: []string{"https://github.com"}, Token: testToken}
	for _, url := range []string{"file://" + bare, bare, "ext::sh -c touch% " + filepath.Join(dir, "pwned"), "fd::0"} {
		for _, r := range []*Remote{nil, remote} {
			c := Build(DefaultGitPath, dir, dir, Invocation{Args: []string{"ls-remote", "--", url}, Remote: r})
			cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
			cmd.Dir, cmd.Env = dir, c.Env
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Errorf("ls-remote %q (remote %v) succeeded; want the transport refused:\n%s", url, r != nil, out)
				continue
			}
			if cat, msg := Classify(out, dir); cat != backends.Forbidden || !strings.Contains(msg, "not allowed") {
				t.Errorf("ls-remote %q: category %q (%s), want forbidden", url, cat, msg)
			}
			if strings.Contains(string(out), testToken) {
				t.Errorf("token in git output: %s", out)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("ext:: transport ran its command")
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestBuildDiffWithoutNoExtDiff(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "f.txt"), "one\n", 0o644)
	setupGit(t, repo, "add", "f.txt")
	setupGit(t, repo, "commit", "-q", "-m", "one")
	writeFile(t, filepath.Join(repo, "f.txt"), "two\n", 0o644)
	if out := gatewayGit(t, repo, "diff", "HEAD"); !bytes.Contains(out, []byte("+two")) {
		t.Errorf("git diff through Build printed %q, want a patch", out)
	}
}
