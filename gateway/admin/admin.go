// Package admin is the operators' HTTP listener, kept on its own address so
// that agents never reach it: Prometheus metrics at /metrics, liveness at
// /healthz, readiness at /readyz, the kill-switch override at /kill, the
// routing state this gateway applies at /status, and what a kill-switch
// drill needs: its mark at /drill and forced breakers at /breaker.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
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
	// Drill, if set, is the gateway's drill mark, served at /drill and
	// shown in /status. Changing it needs the token as /kill does.
	Drill DrillMarker
	// Breakers, if set, lets operators force an operation's Approach 2
	// breaker open at /breaker (token as for /kill); shown in /status.
	Breakers BreakerForcer
}

// DrillMarker is the gateway's drill mark (gateway.DrillMark).
type DrillMarker interface {
	Set(id, by, reason string, ttl time.Duration) (gateway.Drill, error)
	Clear(id string, result gateway.DrillResult, detail string) (gateway.Drill, error)
	Current() (gateway.Drill, bool)
}

// BreakerForcer forces Approach 2 breakers open (gateway.Router).
type BreakerForcer interface {
	ForceBreaker(op backends.Op, by, reason string, ttl time.Duration) (gateway.ForcedBreaker, error)
	ReleaseBreaker(op backends.Op, by, reason string) (bool, error)
	ForcedBreakers() map[string]gateway.ForcedBreaker
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
	// Approach 2 ("closed", "half-open", "open", "forced-open").
	Breakers map[string]string `json:"breakers_approach2"`
	// BreakersForced are the breakers an operator forced open, by
	// operation.
	BreakersForced map[string]gateway.ForcedBreaker `json:"breakers_forced,omitempty"`
	// Traffic is the router's counters since the gateway started.
	Traffic *gateway.Traffic `json:"traffic,omitempty"`
	// Drill is the drill that marks this gateway, if any.
	Drill *gateway.Drill `json:"drill,omitempty"`
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
	want, _ := hex.DecodeString(cfg.KillTokenSHA256)
	auth := changeAuth{tokenHash: want, open: cfg.KillWithoutToken}
	if kill != nil {
		mux.Handle("/kill", killHandler{k: kill, auth: auth})
	}
	if cfg.Drill != nil {
		mux.Handle("/drill", drillHandler{m: cfg.Drill, auth: auth})
	}
	if cfg.Breakers != nil {
		mux.Handle("/breaker", breakerHandler{b: cfg.Breakers, auth: auth})
	}
	if cfg.Status != nil {
		needsToken := !cfg.KillWithoutToken || cfg.KillTokenSHA256 != ""
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
			st := cfg.Status(r.Context())
			st.OverrideNeedsToken = needsToken
			if cfg.Drill != nil {
				if d, ok := cfg.Drill.Current(); ok {
					st.Drill = &d
				}
			}
			if cfg.Breakers != nil && st.BreakersForced == nil {
				st.BreakersForced = cfg.Breakers.ForcedBreakers()
			}
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

// changeAuth decides who may change the gateway's routing through the
// listener (the override, the drill mark, forced breakers): the holder of
// the admin token, or anyone when the operator opted out and set none.
type changeAuth struct {
	tokenHash []byte // SHA-256 of the admin token
	open      bool   // with no tokenHash: changes need no token
}

// authorized reports whether r may change the routing.
func (a changeAuth) authorized(r *http.Request) bool {
	if len(a.tokenHash) == 0 {
		return a.open
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(token))
	return ok && subtle.ConstantTimeCompare(sum[:], a.tokenHash) == 1
}

// allow answers a request that changes what (reads pass) and may not, and
// reports whether it may.
func (a changeAuth) allow(w http.ResponseWriter, r *http.Request, what string) bool {
	if r.Method == http.MethodGet {
		return true
	}
	if len(a.tokenHash) == 0 && !a.open {
		http.Error(w, "changing "+what+" needs an admin token, and this gateway has none: set listen.admin_token_sha256 (gitgate hash-token), or listen.admin_kill_without_token: true to let any local process change it", http.StatusForbidden)
		return false
	}
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gitgate admin"`)
		http.Error(w, "changing "+what+" needs the admin token (Authorization: Bearer ...)", http.StatusUnauthorized)
		return false
	}
	return true
}

// killHandler serves the override: GET shows it, POST {"kill": true, "by":
// "...", "reason": "..."} sets it, DELETE ?by=...&reason=... clears it. Every
// change needs who and why, and the admin token (unless the operator
// opted out).
type killHandler struct {
	k    KillSwitch
	auth changeAuth
}

func (h killHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.auth.allow(w, r, "the kill switch") {
		return
	}
	switch r.Method {
	case http.MethodGet:
		ov, on := h.k.CurrentOverride()
		writeJSON(w, map[string]any{"override": on, "kill": on && ov.Kill, "by": ov.By, "reason": ov.Reason, "at": ov.At})
	case http.MethodPost:
		var ov flags.Override
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&ov); err != nil || ov.By == "" || ov.Reason == "" {
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

// DrillMarkRequest is the body of PUT /drill: the drill id that marks the
// gateway, who runs it and why, and how long the mark holds unless
// refreshed (so that a drill that dies does not hold it for ever).
type DrillMarkRequest struct {
	ID     string        `json:"id"`
	By     string        `json:"by"`
	Reason string        `json:"reason"`
	TTL    time.Duration `json:"-"`
	// TTLSeconds is TTL on the wire.
	TTLSeconds float64 `json:"ttl_seconds"`
}

// DrillConflict is the body of a 409 answer of /drill: another drill holds
// the gateway. The client returns it as an error.
type DrillConflict struct {
	Message string        `json:"error"`
	Holder  gateway.Drill `json:"holder"`
}

func (c *DrillConflict) Error() string {
	if c.Message != "" {
		return c.Message
	}
	return (&gateway.DrillHeldError{Holder: c.Holder}).Error()
}

// maxBody bounds the JSON bodies the admin endpoints read.
const maxBody = 4096

// ttlOf turns seconds from the wire into a duration; false when not
// positive.
func ttlOf(seconds float64) (time.Duration, bool) {
	ttl := time.Duration(seconds * float64(time.Second))
	return ttl, ttl > 0
}

// drillHandler serves the drill mark: GET shows it, PUT sets or refreshes
// it (DrillMarkRequest), DELETE ?id=..&result=pass|fail|aborted&detail=..
// clears it and records the drill's window in the ledger. Changes need the
// admin token as /kill does.
type drillHandler struct {
	m    DrillMarker
	auth changeAuth
}

func (h drillHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.auth.allow(w, r, "the drill mark") {
		return
	}
	switch r.Method {
	case http.MethodGet:
		d, ok := h.m.Current()
		if !ok {
			writeJSON(w, map[string]any{"drill": nil})
			return
		}
		writeJSON(w, map[string]any{"drill": d})
	case http.MethodPut:
		var req DrillMarkRequest
		err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req)
		ttl, ok := ttlOf(req.TTLSeconds)
		if err != nil || req.ID == "" || req.By == "" || req.Reason == "" || !ok {
			http.Error(w, `body must be {"id": "drill id", "by": "who", "reason": "why", "ttl_seconds": N > 0}`, http.StatusBadRequest)
			return
		}
		d, err := h.m.Set(req.ID, req.By, req.Reason, ttl)
		if conflict(w, err) {
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]any{"drill": d})
	case http.MethodDelete:
		q := r.URL.Query()
		id, result, detail := q.Get("id"), gateway.DrillResult(q.Get("result")), q.Get("detail")
		if id == "" || !result.Valid() {
			http.Error(w, "id and result (pass, fail or aborted) are required", http.StatusBadRequest)
			return
		}
		d, err := h.m.Clear(id, result, detail)
		if conflict(w, err) {
			return
		}
		if errors.Is(err, gateway.ErrNoDrill) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"cleared": d, "result": result})
	default:
		http.Error(w, "GET, PUT or DELETE", http.StatusMethodNotAllowed)
	}
}

// conflict answers 409 with the holder when err says another drill holds
// the gateway, and reports whether it did.
func conflict(w http.ResponseWriter, err error) bool {
	var held *gateway.DrillHeldError
	if !errors.As(err, &held) {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	_ = json.NewEncoder(w).Encode(DrillConflict{Message: held.Error(), Holder: held.Holder})
	return true
}

// BreakerRequest is the body of POST /breaker: force op's Approach 2
// breaker open for TTL.
type BreakerRequest struct {
	Op         backends.Op `json:"op"`
	By         string      `json:"by"`
	Reason     string      `json:"reason"`
	TTLSeconds float64     `json:"ttl_seconds"`
}

// breakerHandler serves forced breakers: GET lists them, POST
// (BreakerRequest) forces one open, DELETE ?op=..&by=..&reason=.. releases
// it. Changes need the admin token as /kill does.
type breakerHandler struct {
	b    BreakerForcer
	auth changeAuth
}

func (h breakerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.auth.allow(w, r, "a breaker") {
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, map[string]any{"breakers_forced": h.b.ForcedBreakers()})
	case http.MethodPost:
		var req BreakerRequest
		err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req)
		ttl, ok := ttlOf(req.TTLSeconds)
		if err != nil || req.Op == "" || req.By == "" || req.Reason == "" || !ok {
			http.Error(w, `body must be {"op": "operation", "by": "who", "reason": "why", "ttl_seconds": N > 0}`, http.StatusBadRequest)
			return
		}
		f, err := h.b.ForceBreaker(req.Op, req.By, req.Reason, ttl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]any{"op": req.Op, "forced": f})
	case http.MethodDelete:
		q := r.URL.Query()
		op, by, reason := backends.Op(q.Get("op")), q.Get("by"), q.Get("reason")
		if op == "" || by == "" || reason == "" {
			http.Error(w, "op, by and reason are required", http.StatusBadRequest)
			return
		}
		released, err := h.b.ReleaseBreaker(op, by, reason)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]any{"op": op, "released": released})
	default:
		http.Error(w, "GET, POST or DELETE", http.StatusMethodNotAllowed)
	}
}
