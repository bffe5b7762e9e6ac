// Package admin is the operators' HTTP listener, kept on its own address so
// that agents never reach it: Prometheus metrics at /metrics, liveness at
// /healthz, readiness at /readyz, the kill-switch override at /kill and the
// routing state this gateway applies at /status.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports whether the process can serve traffic; a non-nil error
// says why not.
type ReadyFunc func(ctx context.Context) error

// KillSwitch is the local kill-switch override (flags.Evaluator): it sends
// every operation to Approach 1 whatever state the flags are in.
type KillSwitch interface {
	SetOverride(ov flags.Override) error
	ClearOverride(by, reason string) error
	CurrentOverride() (flags.Override, bool)
}

// Config configures the admin endpoints.
type Config struct {
	Gatherer prometheus.Gatherer // required
	Ready    ReadyFunc           // required
	// Kill is the kill-switch override; nil: no /kill (no flags).
	Kill KillSwitch
	// KillTokenSHA256 (hex) is the SHA-256 of the admin token that setting
	// or clearing the override needs ("Authorization: Bearer <token>").
	KillTokenSHA256 string
	// KillWithoutToken, when no KillTokenSHA256 is set, lets any process
	// that reaches the listener set or clear the override. Without either,
	// the override cannot be changed (reading it is always allowed).
	KillWithoutToken bool
	// Status, if set, is served at GET /status (JSON).
	Status func(ctx context.Context) Status
}

// Status is what GET /status shows: the routing state this gateway applies
// (the kill switch with its source, each operation's shares as configured
// and as effective, local rollbacks), the automatic rollbacks it applied
// and its Approach 2 breakers.
type Status struct {
	*flags.Status
	// AutoRollbacks are the rollbacks this gateway's watcher applied
	// since it started, by operation.
	AutoRollbacks map[string]canary.Applied `json:"automatic_rollbacks"`
	// Breakers is the state of each operation's breaker in front of
	// Approach 2 ("closed", "half-open", "open").
	Breakers map[string]string `json:"breakers_approach2"`
	// OverrideNeedsToken says whether changing the override needs the
	// admin token (false: anyone reaching the listener may change it).
	OverrideNeedsToken bool `json:"override_needs_token"`
}

// Handler returns the admin endpoints; kill may be nil (no flags). Setting
// or clearing the override needs the token of killTokenSHA256 (hex); with
// none, it cannot be changed (see New to opt out).
func Handler(g prometheus.Gatherer, ready ReadyFunc, kill KillSwitch, killTokenSHA256 string) http.Handler {
	return New(Config{Gatherer: g, Ready: ready, Kill: kill, KillTokenSHA256: killTokenSHA256})
}

// New returns the admin endpoints.
func New(cfg Config) http.Handler {
	g, ready, kill := cfg.Gatherer, cfg.Ready, cfg.Kill
	mux := http.NewServeMux()
	if kill != nil {
		want, _ := hex.DecodeString(cfg.KillTokenSHA256)
		mux.Handle("/kill", killHandler{k: kill, tokenHash: want, open: cfg.KillWithoutToken})
	}
	if cfg.Status != nil {
		needsToken := !cfg.KillWithoutToken || cfg.KillTokenSHA256 != ""
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
			st := cfg.Status(r.Context())
			st.OverrideNeedsToken = needsToken
			writeJSON(w, st)
		})
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// killHandler serves the override: GET shows it, POST {"kill": true, "by":
// "...", "reason": "..."} sets it, DELETE ?by=...&reason=... clears it. Every
// change needs who and why, and the admin token (unless the operator
// opted out).
type killHandler struct {
	k         KillSwitch
	tokenHash []byte // SHA-256 of the admin token
	open      bool   // with no tokenHash: changes need no token
}

// authorized reports whether r may change the override.
func (h killHandler) authorized(r *http.Request) bool {
	if len(h.tokenHash) == 0 {
		return h.open
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(token))
	return ok && subtle.ConstantTimeCompare(sum[:], h.tokenHash) == 1
}

func (h killHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && len(h.tokenHash) == 0 && !h.open {
		http.Error(w, "changing the kill-switch override needs an admin token, and this gateway has none: set listen.admin_token_sha256 (gitgate hash-token), or listen.admin_kill_without_token: true to let any local process change it", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gitgate admin"`)
		http.Error(w, "changing the kill switch needs the admin token (Authorization: Bearer ...)", http.StatusUnauthorized)
		return
	}
	switch r.Method {
	case http.MethodGet:
		ov, on := h.k.CurrentOverride()
		writeJSON(w, map[string]any{"override": on, "kill": on && ov.Kill, "by": ov.By, "reason": ov.Reason, "at": ov.At})
	case http.MethodPost:
		var ov flags.Override
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&ov); err != nil || ov.By == "" || ov.Reason == "" {
			http.Error(w, `body must be {"kill": true|false, "by": "who", "reason": "why"}`, http.StatusBadRequest)
			return
		}
		if err := h.k.SetOverride(ov); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"override": true, "kill": ov.Kill})
	case http.MethodDelete:
		by, reason := r.URL.Query().Get("by"), r.URL.Query().Get("reason")
		if by == "" || reason == "" {
			http.Error(w, "by and reason are required", http.StatusBadRequest)
			return
		}
		if err := h.k.ClearOverride(by, reason); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"override": false})
	default:
		http.Error(w, "GET, POST or DELETE", http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
