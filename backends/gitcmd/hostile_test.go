package gitcmd

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestValidateNewBranchRefusesAmbiguousNames: names git would read as a
// namespace, a pseudo-ref or a commit id are refused for a new branch with
// invalid_argument and a sentence that says why; hex words stay usable.
func TestValidateNewBranchRefusesAmbiguousNames(t *testing.T) {
	for _, name := range []string{"main", "feature/x", "add", "cafe", "decade", "facade", "bead-1", "v1.2", "head-start", "ahead", "WIP", "headers/x"} {
		if err := ValidateNewBranch(name); err != nil {
			t.Errorf("ValidateNewBranch(%q) = %v, want nil", name, err)
		}
	}
	for name, why := range map[string]string{
		"refs/heads/main": "ref namespace", "heads/main": "ref namespace", "remotes/origin/main": "ref namespace",
		"tags/v1": "ref namespace", "Refs/x": "ref namespace", "stash": "reserved",
		"HEAD": "HEAD", "head": "HEAD", "FETCH_HEAD": "pseudo-ref", "orig_head": "pseudo-ref", "MERGE_HEAD": "pseudo-ref",
		"CHERRY_PICK_HEAD": "pseudo-ref", "AUTO_MERGE": "pseudo-ref",
		"abc1234": "commit id", "deadbeef": "commit id", "ABCDEF0": "commit id", strings.Repeat("a", 40): "commit id",
		strings.Repeat("0", 64): "commit id", "defaced": "commit id",
	} {
		err := ValidateNewBranch(name)
		if backends.CategoryOf(err) != backends.InvalidArgument || !strings.Contains(backends.MessageOf(err), why) {
			t.Errorf("ValidateNewBranch(%q) = %v, want invalid_argument saying %q", name, err, why)
		}
	}
	// The namespace and pseudo-ref refusals hold for existing names too.
	for _, name := range []string{"refs/heads/main", "heads/main", "FETCH_HEAD"} {
		if backends.CategoryOf(ValidateBranch(name)) != backends.InvalidArgument {
			t.Errorf("ValidateBranch(%q) accepted", name)
		}
	}
	if !ShortHexName("cafe") || !ShortHexName("abc123") || ShortHexName("add") || ShortHexName("abc1234") || ShortHexName("cafes") {
		t.Error("ShortHexName: want true for 4-6 hex digits only")
	}
}

// TestCheckNewBranchAgainstRefs: shadowing a remote-tracking branch, a
// remote or a tag, and case-only differences are refused; the existing
// branch's own name (git's conflict) and unrelated names are not.
func TestCheckNewBranchAgainstRefs(t *testing.T) {
	remotes := []string{"origin", "upstream"}
	refs := []string{"refs/heads/main", "refs/heads/dev", "refs/remotes/origin/HEAD", "refs/remotes/origin/main",
		"refs/remotes/origin/release/v2", "refs/remotes/upstream/topic", "refs/tags/v1.0"}
	for _, name := range []string{"main", "feature", "release/v3", "topic2", "originals", "v1.1"} {
		if err := CheckNewBranch(name, remotes, refs); err != nil {
			t.Errorf("CheckNewBranch(%q) = %v, want nil", name, err)
		}
	}
	for name, why := range map[string]string{
		"origin/main": "shadow", "origin/new": "shadow", "Origin/main": "shadow", "upstream/topic": "shadow",
		"origin": "remote", "UPSTREAM": "remote",
		"Main": "only in case", "MAIN": "only in case", "DEV": "only in case", "Release/V2": "only in case",
		"Topic": "only in case", "v1.0": "tag", "V1.0": "only in case",
	} {
		err := CheckNewBranch(name, remotes, refs)
		if backends.CategoryOf(err) != backends.InvalidArgument || !strings.Contains(backends.MessageOf(err), why) {
			t.Errorf("CheckNewBranch(%q) = %v, want invalid_argument saying %q", name, err, why)
		}
	}
}

// TestValidatePathNamesHostileCharacters: control, bidi and zero-width
// characters are refused, named as an escape (never raw) in the message.
func TestValidatePathNamesHostileCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"invoice\u202etxt.exe": "U+202E (right-to-left override)",
		"a\u202ab":             "U+202A (left-to-right embedding)",
		"a\u2066b":             "U+2066 (left-to-right isolate)",
		"a\u2069b":             "U+2069 (pop directional isolate)",
		"a\u200eb":             "U+200E (left-to-right mark)",
		"a\u200fb":             "U+200F (right-to-left mark)",
		"a\u061cb":             "U+061C (Arabic letter mark)",
		"a\u200bb":             "U+200B (zero width space)",
		"a\u200cb":             "U+200C (zero width non-joiner)",
		"a\u200db":             "U+200D (zero width joiner)",
		"a\u2060b":             "U+2060 (word joiner)",
		"\ufeffa":              "U+FEFF (zero width no-break space)",
		"red\x1b[31mALERT.txt": "U+001B (control character)",
		"a\x7fb":               "U+007F (control character)",
		"a\u0085b":             "U+0085 (control character)",
		"a\u009bb":             "U+009B (control character)",
		"a\tb":                 "U+0009 (control character)",
	} {
		_, err := ValidatePath(in, false)
		msg := backends.MessageOf(err)
		if backends.CategoryOf(err) != backends.InvalidArgument || !strings.Contains(msg, want) {
			t.Errorf("ValidatePath(%q) = %v, want invalid_argument naming %s", in, err, want)
		}
		if strings.ContainsAny(msg, "\x1b\x7f\u202e\u200b\ufeff\u0085") {
			t.Errorf("ValidatePath(%q): the message carries the raw character: %q", in, msg)
		}
	}
	if _, err := ValidatePaths([]string{"ok.txt", "x\u202e"}); !strings.Contains(backends.MessageOf(err), "U+202E") {
		t.Errorf("ValidatePaths: %v, want U+202E named", err)
	}
	err := ValidateBranch("main\u202e")
	if !strings.Contains(backends.MessageOf(err), "U+202E (right-to-left override)") {
		t.Errorf("ValidateBranch: %v, want U+202E named", err)
	}
	if err := ValidateRev("ma\u200bin"); !strings.Contains(backends.MessageOf(err), "U+200B") {
		t.Errorf("ValidateRev: %v, want U+200B named", err)
	}
	// Ordinary non-ASCII names stay valid.
	for _, p := range []string{"café/文件.txt", "emoji-😀.md", "ñ"} {
		if _, err := ValidatePath(p, false); err != nil {
			t.Errorf("ValidatePath(%q) = %v, want nil", p, err)
		}
	}
}

// TestCheckLocalConfig: what git clone, init and the gateway write passes;
// every key that could redirect traffic or credentials is refused, named
// without its value or a URL subsection.
func TestCheckLocalConfig(t *testing.T) {
	const origin = "https://git.example.com/o/r.git"
	good := "core.repositoryformatversion\n0\x00core.filemode\ntrue\x00core.bare\nfalse\x00core.logallrefupdates\ntrue\x00" +
		"remote.origin.url\n" + origin + "\x00remote.origin.fetch\n+refs/heads/*:refs/remotes/origin/*\x00" +
		"remote.origin.fetch\n+refs/heads/main:refs/remotes/origin/main\x00" +
		"branch.main.remote\norigin\x00branch.main.merge\nrefs/heads/main\x00branch.feature/x.remote\n.\x00branch.feature/x.merge\nrefs/heads/main\x00"
	if key, err := CheckLocalConfig([]byte(good), origin); err != nil || key != "" {
		t.Fatalf("CheckLocalConfig(clone's config) = %q, %v", key, err)
	}
	if _, err := CheckLocalConfig([]byte("core.bare\ntrue\x00"), ""); err != nil {
		t.Fatalf("a scratch repository's config refused: %v", err)
	}
	for entry, key := range map[string]string{
		"http.proxy\nhttp://evil:1":                                 "http.proxy",
		"https.proxy\nhttp://evil:1":                                "https.proxy",
		"http.https://git.example.com/.proxy\nhttp://evil:1":        "http.<…>.proxy",
		"http.sslverify\nfalse":                                     "http.sslverify",
		"http.sslcainfo\n/tmp/ca.pem":                               "http.sslcainfo",
		"http.sslcapath\n/tmp":                                      "http.sslcapath",
		"http.sslcert\n/tmp/c":                                      "http.sslcert",
		"http.sslkey\n/tmp/k":                                       "http.sslkey",
		"http.extraheader\nX: " + testToken:                         "http.extraheader",
		"http.cookiefile\n/tmp/c":                                   "http.cookiefile",
		"http.curloptresolve\ngit.example.com:443:10.0.0.1":         "http.curloptresolve",
		"url.http://evil/.insteadof\nhttps://git.example.com/":      "url.<…>.insteadof",
		"url.http://evil/.pushinsteadof\nhttps://git.example.com/":  "url.<…>.pushinsteadof",
		"remote.origin.pushurl\nhttp://evil/r.git":                  "remote.origin.pushurl",
		"remote.origin.proxy\nhttp://evil:1":                        "remote.origin.proxy",
		"remote.origin.receivepack\ntouch /tmp/x":                   "remote.origin.receivepack",
		"remote.origin.uploadpack\ntouch /tmp/x":                    "remote.origin.uploadpack",
		"remote.origin.url\nhttp://evil/r.git":                      "remote.origin.url",
		"remote.evil.url\nhttp://evil/r.git":                        "remote.evil.url",
		"remote.origin.fetch\n+refs/heads/*:refs/heads/*":           "remote.origin.fetch",
		"core.sshcommand\nsh -c x":                                  "core.sshcommand",
		"core.gitproxy\npcmd":                                       "core.gitproxy",
		"core.worktree\n/etc":                                       "core.worktree",
		"credential.helper\nstore":                                  "credential.helper",
		"credential.https://user:" + testToken + "@x.helper\nstore": "credential.<…>.helper",
		"credential.username\nbob":                                  "credential.username",
		"include.path\n/tmp/evil":                                   "include.path",
		"includeif.gitdir:/.path\n/tmp/evil":                        "includeif.<…>.path",
		"extensions.worktreeconfig\ntrue":                           "extensions.worktreeconfig",
		"branch.main.remote\nevil":                                  "branch.main.remote",
		"branch.main.pushremote\norigin":                            "branch.main.pushremote",
		"protocol.allow\nalways":                                    "protocol.allow",
		"valueless":                                                 "<…>",
	} {
		list := good + entry + "\x00"
		gotKey, err := CheckLocalConfig([]byte(list), origin)
		msg := backends.MessageOf(err)
		if backends.CategoryOf(err) != backends.Internal || gotKey != key || !strings.Contains(msg, key) {
			t.Errorf("CheckLocalConfig(+%q) = %q, %v; want internal naming %q", entry, gotKey, err, key)
		}
		_, value, _ := strings.Cut(entry, "\n")
		if value != "" && strings.Contains(msg, value) || strings.Contains(msg, testToken) {
			t.Errorf("CheckLocalConfig(+%q): the message shows the value: %q", entry, msg)
		}
	}
}

// TestBuildIgnoresPlantedProxyAndHeaders runs real git through Build in a
// repository whose config sends traffic through a recording proxy and adds
// the token as an extra header; the fixed -c resets keep the token and the
// traffic away from the proxy (the pattern keys -c cannot reach are
// CheckLocalConfig's). Plain git with the same config proves the trap live.
func TestBuildIgnoresPlantedProxyAndHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				mu.Lock()
				seen = append(seen, line)
				mu.Unlock()
				_, _ = c.Write([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
			}()
		}
	}()
	var headers []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Get("X-Leak"))
		mu.Unlock()
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	setupGit(t, dir, "init", "-q", "-b", "main", repo)
	cfg, err := os.OpenFile(filepath.Join(repo, ".git", "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.WriteString("[http]\n\tproxy = http://" + proxy.Addr().String() + "\n\textraHeader = X-Leak: " + testToken + "\n" +
		"[remote \"origin\"]\n\turl = " + srv.URL + "/r.git\n"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Close(); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	remote := &Remote{Schemes: []string{"http"}, CredentialHosts: []string{srv.URL}, Username: "x", Token: testToken}
	c := Build(DefaultGitPath, home, home, Invocation{GitDir: filepath.Join(repo, ".git"), Args: []string{"ls-remote", "origin"}, Remote: remote})
	cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
	cmd.Dir, cmd.Env = repo, c.Env
	out, _ := cmd.CombinedOutput()
	mu.Lock()
	gotSeen, gotHeaders := append([]string{}, seen...), append([]string{}, headers...)
	mu.Unlock()
	if len(gotSeen) != 0 {
		t.Errorf("git through Build used the repository's proxy: %q", gotSeen)
	}
	if len(gotHeaders) == 0 {
		t.Fatalf("git through Build never reached the server directly: %s", out)
	}
	for _, h := range gotHeaders {
		if h != "" {
			t.Errorf("git through Build sent the repository's extra header %q", h)
		}
	}
	// Control: plain git goes through the planted proxy.
	_, _ = plainGit(t, repo, "-c", "protocol.http.allow=always", "ls-remote", "origin")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("control run did not use the planted proxy, so the test proves nothing")
	}
}

// TestBuildDoesNotDiscoverEnclosingRepository: a command without
// --git-dir (ls-remote, clone) runs in the sandbox root; if that root lies
// inside some checkout, git must not read the checkout's configuration
// (here a url.*.insteadOf that redirects the remote to a recorder).
func TestBuildDoesNotDiscoverEnclosingRepository(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[name]++
			mu.Unlock()
			http.NotFound(w, r)
		})
	}
	good, evil := httptest.NewServer(handler("good")), httptest.NewServer(handler("evil"))
	t.Cleanup(good.Close)
	t.Cleanup(evil.Close)
	outer := t.TempDir()
	setupGit(t, outer, "init", "-q", "-b", "main", outer)
	setupGit(t, outer, "config", "url."+evil.URL+"/.insteadOf", good.URL+"/")
	root := filepath.Join(outer, "data", "sbx-1")
	if err := os.MkdirAll(filepath.Join(root, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	remote := &Remote{Schemes: []string{"http"}, CredentialHosts: []string{good.URL}, Username: "x", Token: testToken}
	c := Build(DefaultGitPath, root+"/home", root+"/tmp", Invocation{Args: []string{"ls-remote", "--", good.URL + "/r.git"}, Remote: remote})
	run := func(env []string) {
		cmd := exec.CommandContext(t.Context(), c.Path, c.Args...)
		cmd.Dir, cmd.Env = root, env
		_, _ = cmd.CombinedOutput()
	}
	run(c.Env)
	mu.Lock()
	if hits["evil"] != 0 || hits["good"] == 0 {
		t.Errorf("git through Build applied the enclosing checkout's configuration: %v", hits)
	}
	mu.Unlock()
	// Control: without the ceiling, git finds the checkout and obeys it.
	run(slices.DeleteFunc(slices.Clone(c.Env), func(kv string) bool { return strings.HasPrefix(kv, "GIT_CEILING_DIRECTORIES=") }))
	mu.Lock()
	defer mu.Unlock()
	if hits["evil"] == 0 {
		t.Fatalf("control run did not use the enclosing checkout's insteadOf, so the test proves nothing: %v", hits)
	}
}
