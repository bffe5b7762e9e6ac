// Package e2b runs gitgate's sandboxes in E2B microVMs: a client for
// E2B's control-plane REST API (create, find by metadata, set timeout,
// connect, kill) and for envd, the daemon in each sandbox (processes over
// the Connect protocol, files over HTTP). The protocol facts it relies on
// are in shared/e2b-protocol.md.
package e2b

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/backends/recovery"
	"github.com/prometheus/client_golang/prometheus"
)

// APIConfig configures the control-plane client.
type APIConfig struct {
	// BaseURL of the API, e.g. "https://api.e2b.app". Required.
	BaseURL string
	// APIKey is sent as X-API-Key. Required unless APIKeyFunc is set.
	APIKey string
	// APIKeyFunc, if set, is called for every request instead of using
	// APIKey, so that a rotated key applies to the next request. It must
	// be cheap and must not return "".
	APIKeyFunc func() string
	// HTTP is the client used. If nil, one with a 30 s timeout.
	HTTP *http.Client
	// MaxAttempts bounds retries of requests that are safe to retry.
	// If zero, 4.
	MaxAttempts int
	// RetryBase is the first backoff (doubled each attempt, with jitter).
	// If zero, 200 ms.
	RetryBase time.Duration
	// MaxRetryAfter caps how long a Retry-After header makes a retry wait.
	// If zero, 30 s.
	MaxRetryAfter time.Duration
	// Registerer receives the request metrics (gitgate_e2b_requests_total,
	// gitgate_e2b_request_duration_seconds) and counts retries as
	// recoveries. If nil, the provider built on this API registers them
	// with its own Registerer.
	Registerer prometheus.Registerer
}

// API is a client of E2B's control plane. Safe for concurrent use.
type API struct {
	cfg     APIConfig
	metrics *requestMetrics // nil: not measured (yet; see NewProvider)
}

// NewAPI returns a client.
func NewAPI(cfg APIConfig) (*API, error) {
	if cfg.BaseURL == "" || (cfg.APIKey == "" && cfg.APIKeyFunc == nil) {
		return nil, fmt.Errorf("e2b: the API needs a base URL and an API key")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 200 * time.Millisecond
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 30 * time.Second
	}
	a := &API{cfg: cfg}
	if cfg.Registerer != nil {
		a.metrics = newRequestMetrics(cfg.Registerer)
	}
	return a, nil
}

// NewSandbox is a create request.
type NewSandbox struct {
	TemplateID string            `json:"templateID"`
	Timeout    int32             `json:"timeout"` // seconds; always sent (the API default is 15 s)
	Metadata   map[string]string `json:"metadata,omitempty"`
	Secure     bool              `json:"secure"`
}

// Sandbox is what create and connect return.
type Sandbox struct {
	SandboxID       string  `json:"sandboxID"`
	TemplateID      string  `json:"templateID"`
	EnvdVersion     string  `json:"envdVersion"`
	EnvdAccessToken string  `json:"envdAccessToken,omitempty"`
	Domain          *string `json:"domain,omitempty"`
}

// ListedSandbox is one entry of a list.
type ListedSandbox struct {
	SandboxID  string            `json:"sandboxID"`
	TemplateID string            `json:"templateID"`
	StartedAt  time.Time         `json:"startedAt"`
	EndAt      time.Time         `json:"endAt"`
	CPUCount   int               `json:"cpuCount"`
	MemoryMB   int               `json:"memoryMB"`
	Metadata   map[string]string `json:"metadata"`
	State      string            `json:"state"`
}

// SandboxDetail is what get returns.
type SandboxDetail struct {
	ListedSandbox
	EnvdVersion     string  `json:"envdVersion"`
	EnvdAccessToken string  `json:"envdAccessToken,omitempty"`
	Domain          *string `json:"domain,omitempty"`
}

// Create starts a sandbox. It is retried only when the API refused it
// before creating anything (429 with Retry-After: the concurrency cap or
// the rate limit), never after a 5xx or a lost answer, which may have
// created one.
func (a *API) Create(ctx context.Context, req NewSandbox) (*Sandbox, error) {
	if req.Timeout <= 0 {
		return nil, backends.Errorf(backends.InvalidArgument, "e2b: a sandbox needs an explicit timeout")
	}
	var out Sandbox
	err := a.do(ctx, callCreate, http.MethodPost, "/sandboxes", nil, req, &out, retryOnlyRefusals)
	return &out, err
}

// Get returns a sandbox's details.
func (a *API) Get(ctx context.Context, id string) (*SandboxDetail, error) {
	var out SandboxDetail
	err := a.do(ctx, callGet, http.MethodGet, "/sandboxes/"+url.PathEscape(id), nil, nil, &out, retrySafe)
	return &out, err
}

// List returns the running sandboxes whose metadata holds every pair of
// metadata, following the v2 list's pages.
func (a *API) List(ctx context.Context, metadata map[string]string) ([]ListedSandbox, error) {
	pairs := url.Values{}
	for k, v := range metadata {
		pairs.Set(k, v)
	}
	var all []ListedSandbox
	next := ""
	for page := 0; page < 1000; page++ {
		q := url.Values{"state": {"running"}, "limit": {"100"}}
		if len(pairs) > 0 {
			q.Set("metadata", pairs.Encode())
		}
		if next != "" {
			q.Set("nextToken", next)
		}
		var batch []ListedSandbox
		h, err := a.doHeaders(ctx, callList, http.MethodGet, "/v2/sandboxes", q, nil, &batch, retrySafe)
		if err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if next = h.Get("X-Next-Token"); next == "" {
			return all, nil
		}
	}
	return nil, backends.Errorf(backends.Internal, "e2b: the sandbox list did not end after 1000 pages")
}

// SetTimeout sets the sandbox's remaining lifetime to timeout from now.
func (a *API) SetTimeout(ctx context.Context, id string, timeout time.Duration) error {
	body := map[string]int32{"timeout": seconds(timeout)}
	return a.do(ctx, callSetTimeout, http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/timeout", nil, body, nil, retrySafe)
}

// Connect returns a running sandbox (resuming a paused one), extending its
// lifetime to at least timeout.
func (a *API) Connect(ctx context.Context, id string, timeout time.Duration) (*Sandbox, error) {
	var out Sandbox
	body := map[string]int32{"timeout": seconds(timeout)}
	err := a.do(ctx, callConnect, http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/connect", nil, body, &out, retrySafe)
	return &out, err
}

// Kill destroys a sandbox; one that is already gone is not an error.
func (a *API) Kill(ctx context.Context, id string) error {
	err := a.do(ctx, callKill, http.MethodDelete, "/sandboxes/"+url.PathEscape(id), nil, nil, nil, retrySafe)
	if backends.CategoryOf(err) == backends.NotFound {
		return nil
	}
	return err
}

func seconds(d time.Duration) int32 {
	return int32(max(1, min(d, 24*time.Hour)/time.Second))
}

// retryPolicy says which failures a request may be retried after.
type retryPolicy int

const (
	retrySafe         retryPolicy = iota // idempotent: 429, 5xx and transport errors
	retryOnlyRefusals                    // not idempotent: only 429 (refused before doing anything)
)

func (a *API) do(ctx context.Context, c call, method, path string, q url.Values, in, out any, policy retryPolicy) error {
	_, err := a.doHeaders(ctx, c, method, path, q, in, out, policy)
	return err
}

func (a *API) doHeaders(ctx context.Context, c call, method, path string, q url.Values, in, out any, policy retryPolicy) (http.Header, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, backends.Errorf(backends.Internal, "e2b: encode %s %s: %w", method, path, err)
		}
	}
	u := a.cfg.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		h, wait, err := a.once(ctx, method, u, body, out)
		a.metrics.observe(apiControl, c, time.Since(start), err)
		if err == nil {
			return h, nil
		}
		retry := wait >= 0 && (policy == retrySafe || backends.CategoryOf(err) == backends.RateLimited)
		if !retry || attempt >= a.cfg.MaxAttempts {
			return nil, err
		}
		if wait == 0 {
			backoff := a.cfg.RetryBase << (attempt - 1)
			wait = backoff/2 + rand.N(backoff/2+1) // jittered: half fixed, half random
		}
		if !pause.For(ctx, wait) {
			return nil, backends.Errorf(backends.Timeout, "e2b: %s %s: gave up waiting to retry: %w", method, path, err)
		}
		if a.metrics != nil {
			a.metrics.recovery.Record(recovery.Retry, 0) // a control-plane call uses no sandbox time
		}
	}
}

// apiKey is the key to send now.
func (a *API) apiKey() string {
	if a.cfg.APIKeyFunc != nil {
		return a.cfg.APIKeyFunc()
	}
	return a.cfg.APIKey
}

// once makes one request. wait < 0 means the failure must not be retried;
// wait > 0 is what the server asked for (Retry-After).
func (a *API) once(ctx context.Context, method, u string, body []byte, out any) (http.Header, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, -1, backends.Errorf(backends.Internal, "e2b: %w", err)
	}
	req.Header.Set("X-API-Key", a.apiKey())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.cfg.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, backends.Errorf(backends.Timeout, "e2b: %s %s: %v", method, req.URL.Path, ctx.Err())
		}
		return nil, 0, backends.Errorf(backends.Unavailable, "e2b: %s %s: the API is unreachable", method, req.URL.Path)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, 0, backends.Errorf(backends.Unavailable, "e2b: %s %s: reading the answer: %v", method, req.URL.Path, err)
	}
	if resp.StatusCode/100 == 2 {
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return nil, -1, backends.Errorf(backends.Internal, "e2b: %s %s: unexpected answer: %v", method, req.URL.Path, err)
			}
		}
		return resp.Header, 0, nil
	}
	return nil, a.retryAfter(resp), apiError(method, req.URL.Path, resp.StatusCode, data)
}

// retryAfter is the server's Retry-After (seconds or an HTTP date), capped;
// 0 when absent, -1 for statuses that must not be retried.
func (a *API) retryAfter(resp *http.Response) time.Duration {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
	default:
		return -1
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return max(time.Millisecond, min(d, a.cfg.MaxRetryAfter))
}

// apiError maps an error answer to a category; the API's message is kept
// (it names no secret).
func apiError(method, path string, status int, body []byte) error {
	var e struct {
		Message   string `json:"message"`
		ErrorCode string `json:"error_code"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	cat := backends.Internal
	switch {
	case status == http.StatusBadRequest:
		cat = backends.InvalidArgument
	case status == http.StatusUnauthorized:
		cat = backends.Unauthenticated
	case status == http.StatusForbidden:
		cat = backends.Forbidden
	case status == http.StatusNotFound:
		cat = backends.NotFound
	case status == http.StatusConflict:
		cat = backends.Conflict
	case status == http.StatusTooManyRequests:
		cat = backends.RateLimited
	case status >= 500:
		cat = backends.Unavailable
	}
	return backends.Errorf(cat, "e2b: %s %s: %d %s", method, path, status, msg)
}
