package backendtest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// testHostileRefs: branch names that git would resolve to something other
// than what they say (a remote-tracking branch, a namespace, a pseudo-ref, a
// commit id, a case-only twin of a branch) are refused with
// invalid_argument and a reason, as are agent-supplied paths with control,
// bidi or zero-width characters (named as U+XXXX); nothing changes in the
// workspace or on the remote, the backend's own prediction of such a
// checkout gives the same refusal, and the replayed attack (a fake
// "origin/main" with a commit on it) no longer fools log. Ordinary names,
// hex words and remote branches still work.
func testHostileRefs(t *testing.T, f Factory, o options) {
	env := NewEnv(t)
	env.RemoteGit(t, "branch", "feature", "main")
	env.RemoteGit(t, "tag", "v1.0", "main")
	ex := f(t, env)
	p := env.Agent
	ws := scope("bad")
	head := Clone(t, ex, env, p, "bad").Head
	before := hostileSnapshot(t, ex, env)

	type refused struct{ name, why string }
	names := []refused{
		{"origin/main", "shadow"}, {"origin/feature", "shadow"}, {"origin/brand-new", "shadow"}, {"origin", "remote"},
		{"Main", "only in case"}, {"MAIN", "only in case"}, {"Feature", "only in case"}, {"v1.0", "tag"},
		{"refs/heads/main", "ref namespace"}, {"heads/main", "ref namespace"}, {"remotes/origin/main", "ref namespace"}, {"tags/v2", "ref namespace"},
		{"FETCH_HEAD", "pseudo-ref"}, {"ORIG_HEAD", "pseudo-ref"}, {"head", "HEAD"},
		{head[:7], "commit id"}, {head[:12], "commit id"}, {"abc1234", "commit id"}, {head[:5], "abbreviates"},
		{"main\u202e", "U+202E (right-to-left override)"},
	}
	if o.sampled { // one of each kind the workspace's refs decide
		names = []refused{names[0], names[4], names[7], names[8], names[18]}
	}
	for _, n := range names {
		name, why := n.name, n.why
		err := Fail(t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: name, Create: true})
		if backends.CategoryOf(err) != backends.InvalidArgument || !strings.Contains(backends.MessageOf(err), why) {
			t.Errorf("checkout create %q: %v; want invalid_argument saying %q", name, err, why)
		}
	}
	for _, name := range []string{"refs/heads/main", "heads/main"} {
		WantCategory(t, Fail(t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: name}), backends.InvalidArgument)
	}
	missing := Fail(t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "nope"})
	if backends.CategoryOf(missing) != backends.NotFound || !strings.Contains(backends.MessageOf(missing), "pass create: true") {
		t.Errorf("checkout of a missing branch: %v; want not_found suggesting create: true", missing)
	}

	hostile := []string{"invoice\u202etxt.exe", "a\u200bb.txt", "red\x1b[31mALERT.txt", "bom\ufeff.txt", "lrm\u200e.txt", "x\u2066y"}
	for _, name := range sample(o, hostile) {
		for _, req := range []backends.Request{
			&backends.WriteFileRequest{Scope: ws, Path: name, Content: "x"},
			&backends.ReadFileRequest{Scope: ws, Path: name},
			&backends.DeleteFileRequest{Scope: ws, Path: name},
			&backends.ListFilesRequest{Scope: ws, Path: name},
			&backends.CommitRequest{Scope: ws, Message: "m", Paths: []string{name}},
			&backends.DiffRequest{Scope: ws, Paths: []string{name}},
			&backends.LogRequest{Scope: ws, Paths: []string{name}},
		} {
			err := Fail(t, ex, p, req)
			if backends.CategoryOf(err) != backends.InvalidArgument || !strings.Contains(backends.MessageOf(err), "U+") {
				t.Errorf("%s %q: %v; want invalid_argument naming the character", req.Op(), name, err)
			}
			if strings.ContainsAny(backends.MessageOf(err), "\x1b\u202e\u200b\ufeff\u200e\u2066") {
				t.Errorf("%s %q: the error carries the raw character: %q", req.Op(), name, backends.MessageOf(err))
			}
		}
	}
	if after := hostileSnapshot(t, ex, env); after != before {
		t.Fatalf("refused input changed something:\nbefore %s\nafter  %s", before, after)
	}

	// The backend's prediction of a checkout it must refuse is that
	// refusal (a shadow comparison never reports it as a mismatch).
	if pr, ok := ex.(backends.Predictor); ok {
		req := &backends.CheckoutRequest{Scope: ws, Branch: "origin/main", Create: true}
		req.Principal = p
		want := Fail(t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "origin/main", Create: true})
		_, err := pr.Predict(Ctx(t), req, &backends.CheckoutResult{Branch: "origin/main", Head: head, Created: true})
		if backends.CategoryOf(err) != backends.InvalidArgument || backends.MessageOf(err) != backends.MessageOf(want) {
			t.Errorf("prediction of a refused checkout: %v; want the checkout's refusal %v", err, want)
		}
	}

	// The attack replayed: the fake origin/main is refused, so log of
	// origin/main still shows the remote's commit.
	_ = Fail(t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "origin/main", Create: true})
	Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws, Path: "fake.txt", Content: "fake\n"})
	Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: ws, Message: "Fake commit"})
	lg := Do[*backends.LogResult](t, ex, p, &backends.LogRequest{Scope: ws, Ref: "origin/main", Limit: 1})
	if len(lg.Commits) != 1 || lg.Commits[0].SHA != env.RemoteRef(t, "refs/heads/main") {
		t.Fatalf("log origin/main = %+v, want the remote's main %s", lg.Commits, env.RemoteRef(t, "refs/heads/main"))
	}

	// Ordinary names, hex words and remote branches still work.
	word := "decade"
	if strings.HasPrefix(head, word) {
		word = "facade"
	}
	for _, name := range []string{word, "add", "fix/Main-menu", "origins"} {
		Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: name, Create: true})
	}
	co := Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "feature"})
	if co.Branch != "feature" || co.Head != env.RemoteRef(t, "refs/heads/feature") {
		t.Fatalf("checkout of the remote branch feature: %+v", co)
	}
	Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "main"})
}

// hostileSnapshot is snapshot with the workspace's branches (local and
// remote-tracking) and the files' sizes.
func hostileSnapshot(t *testing.T, ex backends.Executor, env *Env) string {
	t.Helper()
	br := Do[*backends.BranchesResult](t, ex, env.Agent, &backends.BranchesRequest{Scope: scope("bad"), Remote: true})
	return fmt.Sprintf("%s %+v %s", snapshot(t, ex, env), br.Branches, snapshotWS(t, ex, env, "bad"))
}

// recorder is a TCP listener that records every byte sent to it and
// answers HTTP 502: a proxy, a redirected remote or a pushurl that must
// never see a connection.
type recorder struct {
	ln   net.Listener
	mu   sync.Mutex
	data []byte
	n    int
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r.mu.Lock()
				r.n++
				r.mu.Unlock()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					r.mu.Lock()
					r.data = append(r.data, buf[:n]...)
					r.mu.Unlock()
					if strings.Contains(string(buf[:n]), "\r\n\r\n") {
						_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
						return
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return r
}

func (r *recorder) seen() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, string(r.data)
}

// testPlantedConfig plants, one at a time, every kind of key that could
// redirect traffic or credentials into a workspace's own git configuration
// (as if something had written to the gateway's git directory) and runs
// pull and push: each is refused as internal before git talks to anyone, the
// recording listener the key points at sees no connection and no token, and
// nothing changes. The clean configuration then works again.
func testPlantedConfig(t *testing.T, f Factory, o options) {
	env := NewEnv(t)
	ex := f(t, env)
	p := env.Agent
	ws := scope("bad")
	Clone(t, ex, env, p, "bad")
	Do[*backends.CheckoutResult](t, ex, p, &backends.CheckoutRequest{Scope: ws, Branch: "planted", Create: true})
	Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: ws, Path: "p.txt", Content: "p\n"})
	Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: ws, Message: "Planted"})
	configs := workspaceConfigs(t, env, "bad")
	rec := newRecorder(t)
	evil := "http://" + rec.ln.Addr().String()
	u, _ := url.Parse(env.RepoURL)
	base := u.Scheme + "://" + u.Host + "/"
	include := filepath.Join(t.TempDir(), "evil.cfg")
	if err := os.WriteFile(include, []byte("[http]\n\tproxy = "+evil+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := []string{
		"[http]\n\tproxy = " + evil,
		"[http \"" + base + "\"]\n\tproxy = " + evil,
		"[http]\n\tsslVerify = false",
		"[http]\n\tsslCAInfo = /tmp/evil-ca.pem",
		"[http]\n\tsslCAPath = /tmp",
		"[http]\n\tsslCert = /tmp/c.pem\n\tsslKey = /tmp/k.pem",
		"[http]\n\textraHeader = X-Evil: 1",
		"[http]\n\tcookieFile = /tmp/evil-cookies",
		"[http]\n\tcurloptResolve = " + u.Hostname() + ":" + u.Port() + ":127.0.0.2",
		"[url \"" + evil + "/\"]\n\tinsteadOf = " + base,
		"[url \"" + evil + "/\"]\n\tpushInsteadOf = " + base,
		"[remote \"origin\"]\n\tpushurl = " + evil + "/demo.git",
		"[remote \"origin\"]\n\tproxy = " + evil,
		"[remote \"origin\"]\n\treceivepack = /bin/false",
		"[remote \"origin\"]\n\tuploadpack = /bin/false",
		"[remote \"evil\"]\n\turl = " + evil + "/demo.git",
		"[core]\n\tsshCommand = /bin/false",
		"[core]\n\tgitProxy = /bin/false",
		"[credential]\n\thelper = store",
		"[credential \"" + base + "\"]\n\tusername = evil",
		"[include]\n\tpath = " + include,
		"[includeIf \"gitdir:/\"]\n\tpath = " + include,
	}
	before := hostileSnapshot(t, ex, env)
	for _, cfg := range sample(o, planted) {
		originals := map[string][]byte{}
		for _, c := range configs {
			data, err := os.ReadFile(c)
			if err != nil {
				t.Fatal(err)
			}
			originals[c] = data
			if err := os.WriteFile(c, append(append([]byte{}, data...), []byte("\n"+cfg+"\n")...), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, req := range []backends.Request{&backends.PullRequest{Scope: ws}, &backends.PushRequest{Scope: ws}} {
			err := Fail(t, ex, p, req)
			if backends.CategoryOf(err) != backends.Internal {
				t.Errorf("%s with %q planted: %v; want internal", req.Op(), cfg, err)
			}
			if strings.Contains(err.Error(), Token) || strings.Contains(err.Error(), evil) {
				t.Errorf("%s with %q planted: the error shows a value: %v", req.Op(), cfg, err)
			}
		}
		for c, data := range originals {
			if err := os.WriteFile(c, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, data := rec.seen()
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + Token))
	if n != 0 || strings.Contains(data, Token) || strings.Contains(data, basic) {
		t.Fatalf("the planted destination got %d connections (token seen: %v):\n%.300s", n, strings.Contains(data, Token) || strings.Contains(data, basic), data)
	}
	if after := hostileSnapshot(t, ex, env); after != before {
		t.Fatalf("refused remote commands changed something:\nbefore %s\nafter  %s", before, after)
	}
	// The gateway's own configuration passes.
	Do[*backends.PushResult](t, ex, p, &backends.PushRequest{Scope: ws})
	Do[*backends.PullResult](t, ex, p, &backends.PullRequest{Scope: ws})
}

// workspaceConfigs returns the git configuration files of workspace ws in
// env's local sandboxes (gitgate's layout: <sandbox>/git/<ws>.git/config).
func workspaceConfigs(t *testing.T, env *Env, ws string) []string {
	t.Helper()
	var found []string
	for _, root := range env.SandboxRoots {
		for _, pattern := range []string{"git", "*/git", "*/*/git"} {
			m, err := filepath.Glob(filepath.Join(root, pattern, ws+".git", "config"))
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, m...)
		}
	}
	if len(found) == 0 {
		t.Skipf("workspace %q has no git directory on this machine (remote sandboxes)", ws)
	}
	return found
}
