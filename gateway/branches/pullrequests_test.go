package branches

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGitHubOpenPullRequests(t *testing.T) {
	var auth, head string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/repos/acme/web/pulls" || r.URL.Query().Get("state") != "open" {
			http.NotFound(w, r)
			return
		}
		auth, head = r.Header.Get("Authorization"), r.URL.Query().Get("head")
		if head == "acme:agent/a1/open" {
			_, _ = w.Write([]byte(`[{"number":7}]`))
			return
		}
		_, _ = w.Write([]byte(`[]`))
	}))
	defer api.Close()
	g := &GitHub{API: api.URL, Token: func(string) string { return "tok" }}
	open, err := g.OpenFor(t.Context(), "p", "https://github.com/acme/web.git", "agent/a1/open")
	if err != nil || !open || auth != "Bearer tok" {
		t.Errorf("open branch: %v, %v (auth %q)", open, err, auth)
	}
	if open, err := g.OpenFor(t.Context(), "p", "https://github.com/acme/web", "agent/a1/done"); err != nil || open {
		t.Errorf("closed branch: %v, %v", open, err)
	}
	head = ""
	if open, err := g.OpenFor(t.Context(), "p", "https://git.example/acme/web.git", "x"); err != nil || open || head != "" {
		t.Errorf("another host: %v, %v; asked %q", open, err, head)
	}
	if _, err := (&GitHub{API: api.URL + "/nope"}).OpenFor(t.Context(), "p", "https://github.com/acme/web.git", "x"); err == nil {
		t.Error("an API error was not reported")
	}
}
