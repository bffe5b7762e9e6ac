package e2b_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// TestTokenNeverInCommands captures everything gitgate sends to E2B over a
// session that clones, commits, pushes, pulls and is shadow-predicted, and
// proves the project's tokens travel only as the body of a credential-file
// upload — never in a command, an argument, an environment variable,
// standard input, a header or a query — and that no credential file is left
// in the sandbox afterwards.
func TestTokenNeverInCommands(t *testing.T) {
	t.Parallel()
	env, s, ex := onE2B(t, e2bfake.Config{})
	p := env.Agent
	clone := backendtest.Clone(t, ex, env, p, "sec")
	backendtest.Do[*backends.WriteFileResult](t, ex, p, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "sec"}, Path: "x.txt", Content: "x"})
	backendtest.Do[*backends.CommitResult](t, ex, p, &backends.CommitRequest{Scope: backends.Scope{Workspace: "sec"}, Message: "secret-free message"})
	push := &backends.PushRequest{Scope: backends.Scope{Workspace: "sec"}}
	pushed := backendtest.Do[*backends.PushResult](t, ex, p, push)
	backendtest.Do[*backends.PullResult](t, ex, p, &backends.PullRequest{Scope: backends.Scope{Workspace: "sec"}})
	if _, err := ex.Predict(backendtest.Ctx(t), push, pushed); err != nil { // reads the remote with the read-only token
		t.Fatal(err)
	}
	if env.RemoteRef(t, "refs/heads/main") != pushed.Head || clone.Head == "" {
		t.Fatalf("the push did not land: remote main %s, pushed %s", env.RemoteRef(t, "refs/heads/main"), pushed.Head)
	}

	secrets := []string{backendtest.Token, backendtest.ReadToken}
	uploads := 0
	for _, r := range s.Records() {
		visible := r.Method + " " + r.Path + "?" + r.Query + "\n" + fmt.Sprint(r.Header)
		for _, secret := range secrets {
			if strings.Contains(visible, secret) {
				t.Fatalf("a token in a request line or header: %s", visible)
			}
			if bytes.Contains(r.Body, []byte(secret)) {
				if !credentialUpload(t, r, secret) {
					t.Fatalf("a token in the body of %s %s?%s: %q", r.Method, r.Path, r.Query, r.Body)
				}
				uploads++
			}
		}
	}
	if uploads < 4 { // clone, push, pull, and the prediction's ls-remote
		t.Fatalf("%d credential-file uploads carried a token; the remote commands did not get theirs", uploads)
	}
	_ = filepath.WalkDir(s.Root(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".credential-") {
			t.Errorf("credential file left in the sandbox: %s", path)
		}
		return nil
	})
}

// credentialUpload reports whether r is an upload whose files holding
// secret are all credential files (a raw upload to one, or multipart parts
// named by their path).
func credentialUpload(t *testing.T, r e2bfake.Record, secret string) bool {
	t.Helper()
	if r.Method != "POST" || r.Path != "/files" {
		return false
	}
	media, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	if media == "application/octet-stream" {
		return strings.Contains(r.Query, ".credential-")
	}
	if !strings.HasPrefix(media, "multipart/") {
		return false
	}
	mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return true
		}
		if err != nil {
			t.Fatalf("a malformed multipart upload: %v", err)
		}
		data, _ := io.ReadAll(part)
		_, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if bytes.Contains(data, []byte(secret)) && !strings.Contains(dp["filename"], "/tmp/.credential-") {
			return false
		}
		if strings.Contains(part.Header.Get("Content-Disposition"), secret) {
			return false
		}
	}
}
