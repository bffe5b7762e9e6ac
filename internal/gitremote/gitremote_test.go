package gitremote

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCloneAndPushWithToken(t *testing.T) {
	s := startServer(t, Config{Username: "dev", Token: testToken})
	c := newClient(t, "dev", testToken)
	work := filepath.Join(t.TempDir(), "work")
	c.git("", "clone", "--", s.RepoURL("demo"), work)
	for p, want := range demoFiles {
		if got := readFile(t, filepath.Join(work, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if got := c.git(work, "log", "-1", "--format=%an <%ae> %at"); got != "gitgate demo <demo@gitgate.invalid> 1704067200" {
		t.Errorf("initial commit author = %q", got)
	}
	if err := os.WriteFile(filepath.Join(work, "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.git(work, "add", "new.txt")
	c.git(work, "commit", "-q", "-m", "add new")
	c.git(work, "push", "-q", "origin", "HEAD:refs/heads/feature")
	head := c.git(work, "rev-parse", "HEAD")
	if n := s.Pushes("demo"); n != 1 {
		t.Errorf("Pushes = %d, want 1", n)
	}
	if got, err := s.Ref(t.Context(), "demo", "refs/heads/feature"); err != nil || got != head {
		t.Errorf("Ref(feature) = %q, %v; want %q", got, err, head)
	}
}

func TestInitialCommitIsDeterministic(t *testing.T) {
	a, b := startServer(t, Config{}), startServer(t, Config{})
	ra, err := a.Ref(t.Context(), "demo", "refs/heads/main")
	if err != nil || ra == "" {
		t.Fatalf("Ref = %q, %v", ra, err)
	}
	if rb, _ := b.Ref(t.Context(), "demo", "refs/heads/main"); ra != rb {
		t.Errorf("initial commits differ: %s vs %s", ra, rb)
	}
	if got, _ := a.Ref(t.Context(), "demo", "refs/heads/nope"); got != "" {
		t.Errorf("missing ref = %q, want empty", got)
	}
}

func TestCloneFailsWithoutValidCredentials(t *testing.T) {
	s := startServer(t, Config{Username: "dev", Token: testToken})
	cases := []struct{ name, user, token string }{
		{"no credentials", "", ""},
		{"wrong token", "dev", "not-the-token"},
		{"wrong user", "mallory", testToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.user, tc.token)
			out, err := c.try("", "clone", "--", s.RepoURL("demo"), filepath.Join(t.TempDir(), "w"))
			if err == nil {
				t.Fatalf("clone succeeded:\n%s", out)
			}
			if tc.user != "" && !strings.Contains(out, "Authentication failed") {
				t.Errorf("git output lacks %q:\n%s", "Authentication failed", out)
			}
		})
	}
	var unauthorized int
	for _, r := range s.Requests() {
		if r.Status == http.StatusUnauthorized {
			unauthorized++
		}
		if r.Status == http.StatusOK {
			t.Errorf("unexpected success: %+v", r)
		}
	}
	if unauthorized < len(cases) {
		t.Errorf("saw %d 401 responses, want >= %d", unauthorized, len(cases))
	}
}

func TestCommitFileSeenByFetch(t *testing.T) {
	s := startServer(t, Config{Token: testToken})
	c := newClient(t, "anyone", testToken)
	work := filepath.Join(t.TempDir(), "work")
	c.git("", "clone", "-q", "--", s.RepoURL("demo"), work)
	before := c.git(work, "rev-parse", "HEAD")
	sha, err := s.CommitFile(t.Context(), "demo", "main", "docs/guide.md", "changed\n", "someone else")
	if err != nil {
		t.Fatal(err)
	}
	if tip, _ := s.Ref(t.Context(), "demo", "refs/heads/main"); tip != sha || sha == before {
		t.Fatalf("main = %s after CommitFile returned %s (before %s)", tip, sha, before)
	}
	c.git(work, "fetch", "-q", "origin")
	if got := c.git(work, "rev-parse", "origin/main"); got != sha {
		t.Errorf("origin/main = %s, want %s", got, sha)
	}
	if got := c.git(work, "rev-parse", "origin/main^"); got != before {
		t.Errorf("parent = %s, want %s", got, before)
	}
	if got := c.git(work, "show", "origin/main:docs/guide.md"); got != "changed" {
		t.Errorf("content = %q", got)
	}
	if _, err := s.CommitFile(t.Context(), "demo", "other", "x.txt", "x", ""); err != nil {
		t.Fatal(err)
	}
	c.git(work, "fetch", "-q", "origin")
	if n := c.git(work, "rev-list", "--count", "origin/other"); n != "1" {
		t.Errorf("new branch has %s commits, want a single root commit", n)
	}
}

// rawGet sends path verbatim (no client-side cleaning) and returns the status.
func rawGet(t *testing.T, s *Server, path, user, pass string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest(http.MethodGet, s.URL(), nil)
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", path, req.Host)
	if a := req.Header.Get("Authorization"); a != "" {
		fmt.Fprintf(conn, "Authorization: %s\r\n", a)
	}
	fmt.Fprint(conn, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestOnlyExistingReposUnderRootAreServed(t *testing.T) {
	base := t.TempDir()
	s := startServer(t, Config{Root: filepath.Join(base, "root"), Username: "dev", Token: testToken})
	outside, err := New(Config{Root: base}) // a real repo next to (not under) Root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = outside.Close() })
	if err := outside.CreateRepo(t.Context(), "x", demoFiles); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "x.git"), filepath.Join(base, "root", "link.git")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/../x.git/info/refs", "/%2e%2e/x.git/info/refs", "/demo.git/../../x.git/info/refs",
		"/nope.git/info/refs", "/link.git/info/refs", "/demo/info/refs", "/.git/info/refs",
		"/-demo.git/info/refs", "/demo.git/", "/demo.git", "//demo.git/info/refs", "/",
	} {
		if resp := rawGet(t, s, p, "dev", testToken); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, resp.StatusCode)
		}
	}
	ok := "/demo.git/info/refs?service=git-upload-pack"
	if resp := rawGet(t, s, ok, "dev", testToken); resp.StatusCode != http.StatusOK {
		t.Errorf("authorized GET = %d, want 200", resp.StatusCode)
	}
	resp := rawGet(t, s, ok, testToken, testToken) // token as user name: must be redacted
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != realmHeader {
		t.Errorf("bad user: %d %q, want 401 with challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	recs := s.Requests()
	if last := recs[len(recs)-1]; last.User != "[REDACTED]" || !last.HadAuth || last.Service != "git-upload-pack" {
		t.Errorf("last record = %+v", last)
	}
}

// TestAuthDisabledAllowsAnonymousPush also pushes a pack larger than
// http.postBuffer, so git sends a probe POST and then a chunked body.
func TestAuthDisabledAllowsAnonymousPush(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, "", "")
	work := filepath.Join(t.TempDir(), "work")
	c.git("", "clone", "-q", "--", s.RepoURL("demo"), work)
	if err := os.WriteFile(filepath.Join(work, "big.bin"), bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c.git(work, "add", "big.bin")
	c.git(work, "commit", "-q", "-m", "big")
	c.git(work, "-c", "http.postBuffer=4096", "-c", "core.compression=0", "push", "-q", "origin", "HEAD:main")
	if n := s.Pushes("demo"); n != 1 {
		t.Errorf("Pushes = %d, want 1", n)
	}
	var posts int
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && r.Path == "/demo.git/git-receive-pack" {
			posts++
		}
	}
	if posts != 2 {
		t.Errorf("saw %d receive-pack POSTs, want 2 (probe + chunked pack)", posts)
	}
	if got, _ := s.Ref(t.Context(), "demo", "refs/heads/main"); got != c.git(work, "rev-parse", "HEAD") {
		t.Errorf("main not updated: %s", got)
	}
}

func TestValidation(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without Root succeeded")
	}
	if _, err := New(Config{Root: t.TempDir(), GitPath: "git"}); err == nil {
		t.Error("New with relative GitPath succeeded")
	}
	s := startServer(t, Config{})
	ctx := t.Context()
	for _, name := range []string{"", "..", "a..b", "-x", "a/b", strings.Repeat("a", 101)} {
		if err := s.CreateRepo(ctx, name, nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CreateRepo(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if err := s.CreateRepo(ctx, "demo", nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateRepo(existing) = %v, want fs.ErrExist", err)
	}
	for _, p := range []string{"", "/abs", "a/../b", ".git/config", "a//b", "x/"} {
		if _, err := s.CommitFile(ctx, "demo", "main", p, "x", ""); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CommitFile(path %q) = %v, want ErrInvalidPath", p, err)
		}
	}
	if _, err := s.CommitFile(ctx, "nope", "main", "a", "x", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CommitFile(missing repo) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.CommitFile(ctx, "demo", "bad..branch", "a", "x", ""); err == nil {
		t.Error("CommitFile with invalid branch succeeded")
	}
}

// TestReadTokenFetchesButCannotPush: the read-only token clones and lists
// refs, is refused on push (the remote unchanged), and is recorded as such.
func TestReadTokenFetchesButCannotPush(t *testing.T) {
	const readToken = "read-only-0c7d1e"
	s := startServer(t, Config{Username: "dev", Token: testToken, ReadToken: readToken})
	c := newClient(t, "dev", readToken)
	work := filepath.Join(t.TempDir(), "work")
	c.git("", "clone", "--", s.RepoURL("demo"), work)
	before, _ := s.Ref(t.Context(), "demo", "refs/heads/main")
	c.git(work, "commit", "-q", "--allow-empty", "-m", "should not land")
	out, err := c.try(work, "push", "origin", "HEAD:refs/heads/main")
	if err == nil {
		t.Fatalf("push with the read-only token succeeded:\n%s", out)
	}
	if after, _ := s.Ref(t.Context(), "demo", "refs/heads/main"); after != before || s.Pushes("demo") != 0 {
		t.Fatalf("the remote changed: main %s → %s, %d pushes", before, after, s.Pushes("demo"))
	}
	var reads, refused int
	for _, r := range s.Requests() {
		if r.ReadOnly {
			reads++
		}
		if r.ReadOnly && r.Status == http.StatusForbidden {
			refused++
		}
		if strings.Contains(fmt.Sprint(r), readToken) {
			t.Fatalf("request record shows the token: %+v", r)
		}
	}
	if reads == 0 || refused == 0 {
		t.Fatalf("%d read-only requests, %d refused; want both > 0", reads, refused)
	}
}
