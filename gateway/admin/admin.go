// Package admin is the operators' HTTP listener, kept on its own address so
// that agents never reach it: Prometheus metrics at /metrics, liveness at
// /healthz, readiness at /readyz, and the kill-switch override at /kill.
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

// Handler returns the admin endpoints; kill may be nil (no flags). When
// killTokenSHA256 (hex) is set, setting or clearing the kill-switch override
// needs "Authorization: Bearer <token>" with the token of that hash.
func Handler(g prometheus.Gatherer, ready ReadyFunc, kill KillSwitch, killTokenSHA256 string) http.Handler {
	mux := http.NewServeMux()
	if kill != nil {
		want, _ := hex.DecodeString(killTokenSHA256)
		mux.Handle("/kill", killHandler{k: kill, tokenHash: want})
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
// change needs who and why, and the admin token when one is set.
type killHandler struct {
	k         KillSwitch
	tokenHash []byte // SHA-256 of the admin token; empty: changes need none
}

// authorized reports whether r may change the override.
func (h killHandler) authorized(r *http.Request) bool {
	if len(h.tokenHash) == 0 {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(token))
	return ok && subtle.ConstantTimeCompare(sum[:], h.tokenHash) == 1
}

func (h killHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
