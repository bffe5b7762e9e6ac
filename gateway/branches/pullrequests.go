package branches

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// GitHub tells through GitHub's REST API whether an open pull request uses
// a branch of a github.com repository. Other hosts cannot tell: no pull
// request is assumed there.
type GitHub struct {
	// API is the REST API's base URL; if empty, https://api.github.com.
	API string
	// Host is the git host whose repositories the API serves; if empty,
	// github.com.
	Host string
	// Token returns the project's token (sent as a bearer token).
	Token  func(project string) string
	Client *http.Client
}

var _ PullRequests = (*GitHub)(nil)

// OpenFor implements PullRequests.
func (g *GitHub) OpenFor(ctx context.Context, project, repoURL, branch string) (bool, error) {
	u, err := url.Parse(repoURL)
	host := g.Host
	if host == "" {
		host = "github.com"
	}
	if err != nil || !strings.EqualFold(u.Host, host) {
		return false, nil
	}
	owner, repo, ok := strings.Cut(strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git"), "/")
	if !ok {
		return false, nil
	}
	api := g.API
	if api == "" {
		api = "https://api.github.com"
	}
	q := url.Values{"state": {"open"}, "head": {owner + ":" + branch}, "per_page": {"1"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("%s/repos/%s/%s/pulls?%s", strings.TrimSuffix(api, "/"), url.PathEscape(owner), url.PathEscape(repo), q.Encode()), nil)
	if err != nil {
		return false, fmt.Errorf("github: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	if g.Token != nil {
		if tok := g.Token(project); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	client := g.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("github: pull requests of %s/%s: %w", owner, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("github: pull requests of %s/%s: %s", owner, repo, resp.Status)
	}
	var prs []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&prs); err != nil {
		return false, fmt.Errorf("github: pull requests of %s/%s: %w", owner, repo, err)
	}
	return len(prs) > 0, nil
}
