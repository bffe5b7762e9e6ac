package e2b_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

const apiKey = "e2b_fakeKEY0123456789abcdef0123456789ab"

func fake(t *testing.T, cfg e2bfake.Config) *e2bfake.Server {
	t.Helper()
	cfg.APIKey = apiKey
	s, err := e2bfake.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func api(t *testing.T, s *e2bfake.Server, key string) *e2b.API {
	t.Helper()
	a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), APIKey: key, RetryBase: 10 * time.Millisecond, MaxRetryAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantCategory(t *testing.T, err error, want backends.Category) {
	t.Helper()
	if got := backends.CategoryOf(err); got != want {
		t.Fatalf("category %q, want %q (error: %v)", got, want, err)
	}
}

// TestLifecycle: create (secure, with metadata and an explicit timeout),
// find by metadata across pages, set the timeout, connect, kill; a killed
// sandbox is not found, and killing it again is not an error.
func TestLifecycle(t *testing.T) {
	s := fake(t, e2bfake.Config{MaxConcurrent: 300})
	a := api(t, s, apiKey)
	ctx := t.Context()
	var ids []string
	for i := range 150 {
		owner := "other"
		if i%2 == 0 {
			owner = "alpha"
		}
		sb, err := a.Create(ctx, e2b.NewSandbox{TemplateID: "gitgate", Timeout: 3600, Secure: true,
			Metadata: map[string]string{"gitgate.project": owner, "gitgate.owner": "alpha&x=y"}})
		if err != nil {
			t.Fatal(err)
		}
		if sb.SandboxID == "" || sb.EnvdAccessToken == "" {
			t.Fatalf("create answered %+v", sb)
		}
		ids = append(ids, sb.SandboxID)
	}
	found, err := a.List(ctx, map[string]string{"gitgate.project": "alpha", "gitgate.owner": "alpha&x=y"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 75 {
		t.Fatalf("found %d sandboxes of alpha, want 75 (over two pages)", len(found))
	}
	for _, sb := range found {
		if sb.Metadata["gitgate.project"] != "alpha" || sb.CPUCount != 2 || sb.MemoryMB != 512 {
			t.Fatalf("listed %+v", sb)
		}
	}
	if err := a.SetTimeout(ctx, ids[0], 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(ctx, ids[0], time.Hour); err != nil {
		t.Fatal(err)
	}
	d, err := a.Get(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(d.EndAt); left < 59*time.Minute || left > time.Hour {
		t.Fatalf("after connect the sandbox ends in %s, want about an hour", left)
	}
	if err := a.Kill(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	_, err = a.Get(ctx, ids[0])
	wantCategory(t, err, backends.NotFound)
	if err := a.Kill(ctx, ids[0]); err != nil {
		t.Fatalf("killing a sandbox that is gone: %v", err)
	}
}

// TestCreateNeedsAnExplicitTimeout: the API's default (15 s) would kill
// a workspace's sandbox under an agent; the client refuses to omit it.
func TestCreateNeedsAnExplicitTimeout(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	_, err := api(t, s, apiKey).Create(t.Context(), e2b.NewSandbox{TemplateID: "gitgate"})
	wantCategory(t, err, backends.InvalidArgument)
	if n := len(s.Records()); n != 0 {
		t.Fatalf("%d requests reached the API", n)
	}
}

// TestErrorsHaveCategories: wrong key → unauthenticated (not retried),
// unknown sandbox → not_found, the concurrency cap → rate_limited after
// retries that honour Retry-After; nothing echoes the key.
func TestErrorsHaveCategories(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{MaxConcurrent: 1, RetryAfter: 1})
	ctx := t.Context()
	_, err := api(t, s, "wrong-key").Get(ctx, "iabc")
	wantCategory(t, err, backends.Unauthenticated)
	if n := len(s.Records()); n != 1 {
		t.Fatalf("an auth failure was retried: %d requests", n)
	}
	a := api(t, s, apiKey)
	_, err = a.Get(ctx, "inope")
	wantCategory(t, err, backends.NotFound)
	if _, err := a.Create(ctx, e2b.NewSandbox{TemplateID: "t", Timeout: 60}); err != nil {
		t.Fatal(err)
	}
	before := len(s.Records())
	start := time.Now()
	_, err = a.Create(ctx, e2b.NewSandbox{TemplateID: "t", Timeout: 60})
	wantCategory(t, err, backends.RateLimited)
	if !strings.Contains(err.Error(), "maximum number of concurrent") {
		t.Fatalf("error does not say why: %v", err)
	}
	if tries := len(s.Records()) - before; tries != 4 {
		t.Fatalf("%d create attempts at the cap, want 4 (bounded retries)", tries)
	}
	if waited := time.Since(start); waited < 3*time.Second {
		t.Fatalf("retries did not wait for Retry-After (1 s each): %s", waited)
	}
	for _, r := range s.Records() {
		if strings.Contains(fmt.Sprint(r.Body), apiKey) || strings.Contains(r.Path+r.Query, apiKey) {
			t.Fatalf("the key travelled outside its header: %+v", r)
		}
	}
}
