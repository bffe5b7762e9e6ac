// Package e2bfake is a local stand-in for E2B, faithful to the protocol
// facts in shared/e2b-protocol.md, for tests: the control-plane REST API
// (create, list v2 with metadata filters and pages, get, timeout, connect,
// kill; API key; concurrency cap answered with 429 and Retry-After) and
// envd behind the shared-host proxy (E2b-Sandbox-Id header; 502 for an
// unknown or dead sandbox; X-Access-Token), whose process service speaks
// the Connect protocol's streaming framing and really runs the commands on
// this machine, each sandbox being a directory. Every request is recorded
// whole, for tests that prove what never reaches E2B.
//
// Where gitgate depends on it, the fake behaves as envd 0.6.13 does (read
// in e2b-dev/infra packages/envd): a command gets envd's environment plus
// the template's /init variables (Config.InitEnv) plus the request's; its
// Connect deadline SIGKILLs only the process envd started (no process
// group); a client that goes away stops nothing; Process/List and
// Process/SendSignal (by pid or tag, to that process only) work; uploads
// are created 0644; an unknown user is refused (unauthenticated "invalid
// username", or 401 on /files). It does not chown uploads (one user here).
package e2bfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a Server.
type Config struct {
	APIKey string // required
	// MaxConcurrent running sandboxes; more creates get 429. 0: 20.
	MaxConcurrent int
	// RetryAfter is sent with 429s, in seconds. 0: 1.
	RetryAfter int
	// SandboxHome is the directory every sandbox's commands see as their
	// home ("/home/user" in E2B's base template); paths under it are
	// mapped to the sandbox's directory on this machine.
	SandboxHome string
	// CPUCount and MemoryMB are reported for every sandbox. 0: 2 and 512.
	CPUCount, MemoryMB int
	// InitEnv is what the template gives envd's /init as environment
	// variables; envd adds them (and E2B_SANDBOX_ID) to every command's
	// environment. nil: DefaultInitEnv, a template that sets git
	// configuration through the environment (a command that runs git with
	// it gets an unusable HTTP proxy).
	InitEnv map[string]string
	// Domain, when set, is the domain the API's create, get and connect
	// answers name for the sandbox (E2B's "domain" field).
	Domain string
	// Latency is the network round trip between the client and E2B, spent
	// on every request (API and envd) before it is served. 0: none, so
	// that tests that do not ask for it run at full speed. DefaultLatency
	// is a realistic figure.
	Latency time.Duration
	// CreateDelay is how long the API takes to start a sandbox, spent in
	// POST /sandboxes on top of Latency. 0: none. DefaultCreateDelay is
	// E2B's published figure.
	CreateDelay time.Duration
}

// Realistic delays for benchmarks (README, "Performance"):
// DefaultCreateDelay is E2B's published sandbox start time (~150 ms,
// e2b.dev and the E2B docs); DefaultLatency is an assumed round trip
// between a gateway and E2B's API and sandbox proxy on the same continent
// (20–40 ms; E2B runs in GCP us-west1, so a gateway elsewhere in North
// America).
const (
	DefaultLatency     = 30 * time.Millisecond
	DefaultCreateDelay = 150 * time.Millisecond
)

// Counts are what the server has served since it started (or since
// ResetCounts).
type Counts struct {
	APIRequests  int // to the control-plane API
	EnvdRequests int // to envd (any route)
	Uploads      int // envd POST /files
	Processes    int // processes envd started (Process/Start)
	// GitProcesses are the processes started whose command or an argument
	// is git (a wrapper that runs git counts).
	GitProcesses int
	// RoundTrips are the requests (API and envd) that arrived while no
	// other request was being served: the round trips a client waited for
	// one after another. Requests sent together (an upload beside a
	// command's start) share one. Meaningful with Latency set, which keeps
	// requests sent together in flight together.
	RoundTrips int
}

// DefaultInitEnv is the /init environment of the default template: git
// configuration through GIT_CONFIG_COUNT (an HTTP proxy nobody listens
// on) and a GIT_DIR, as a template may set them. Every command envd runs
// sees them unless it builds its own environment.
var DefaultInitEnv = map[string]string{
	"GIT_CONFIG_COUNT":   "1",
	"GIT_CONFIG_KEY_0":   "http.proxy",
	"GIT_CONFIG_VALUE_0": "http://127.0.0.1:9",
	"GIT_DIR":            "/nonexistent/e2b-template-git-dir",
	"E2B_TEMPLATE_VAR":   "set-by-the-template",
}

// Record is one request as the server received it.
type Record struct {
	Method, Host, Path, Query string
	Header                    http.Header
	Body                      []byte
}

// Sandbox is a running sandbox.
type Sandbox struct {
	ID, Template string
	Metadata     map[string]string
	Started, End time.Time
	Token        string
	Dir          string // on this machine; SandboxHome inside
	Dead         bool   // envd no longer answers (502), as after a crash
}

// Server is the fake.
type Server struct {
	cfg  Config
	http *httptest.Server
	root string

	mu        sync.Mutex
	sandboxes map[string]*Sandbox
	records   []Record
	// Hook, if set, runs before each envd request is served; a test uses
	// it to kill a sandbox mid-operation or slow envd down.
	hook func(sandboxID, path string)
	// cutAfter, when > 0, makes process streams break off (connection
	// dropped, no end frame) after that many events.
	cutAfter int

	pmu   sync.Mutex
	procs map[string]map[uint32]*proc // sandbox id → pid → process envd started
	cpu   map[string]*cpuBook         // sandbox id → CPU measured (metrics.go)

	cmu      sync.Mutex
	counts   Counts
	latency  time.Duration // Config.Latency, or as SetLatency changed it
	inFlight int           // requests being served that arrived since the last ResetCounts
	gen      int           // how many times the counts were reset
}

// SetLatency changes the round trip spent on every later request.
func (s *Server) SetLatency(d time.Duration) {
	s.cmu.Lock()
	s.latency = d
	s.cmu.Unlock()
}

// Counts returns what the server has served so far.
func (s *Server) Counts() Counts {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.counts
}

// ResetCounts sets every count back to zero.
//
// A request still being served from before (the tail of the last call: its
// handler ends just after the client has its answer) does not hide the next
// request's round trip: only requests that arrived since the reset count as
// in flight.
func (s *Server) ResetCounts() {
	s.cmu.Lock()
	s.counts = Counts{}
	s.inFlight = 0
	s.gen++
	s.cmu.Unlock()
}

func (s *Server) count(fn func(*Counts)) {
	s.cmu.Lock()
	fn(&s.counts)
	s.cmu.Unlock()
}

// wait spends d, or less when the request is abandoned.
func wait(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// Start starts a server on a loopback port; Close stops it.
func Start(cfg Config) (*Server, error) {
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("e2bfake: Config needs an APIKey")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 20
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 1
	}
	if cfg.SandboxHome == "" {
		cfg.SandboxHome = "/home/user"
	}
	if cfg.CPUCount <= 0 {
		cfg.CPUCount = 2
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 512
	}
	if cfg.InitEnv == nil {
		cfg.InitEnv = DefaultInitEnv
	}
	root, err := os.MkdirTemp("", "e2bfake-")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, root: root, sandboxes: map[string]*Sandbox{}, procs: map[string]map[uint32]*proc{}, latency: cfg.Latency}
	s.http = httptest.NewServer(s.routes())
	return s, nil
}

// Root is the directory on this machine holding every sandbox's directory.
func (s *Server) Root() string { return s.root }

// URL is the base URL of both the API and the envd proxy.
func (s *Server) URL() string { return s.http.URL }

// Close stops the server, ends every sandbox's processes and removes its
// directory.
func (s *Server) Close() {
	s.http.CloseClientConnections()
	s.mu.Lock()
	for _, sb := range s.sandboxes {
		s.killSandboxProcesses(sb)
	}
	s.mu.Unlock()
	s.http.Close()
	_ = os.RemoveAll(s.root)
}

// Records returns every request received so far.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records...)
}

// SetHook sets the function run before each envd request.
func (s *Server) SetHook(fn func(sandboxID, path string)) {
	s.mu.Lock()
	s.hook = fn
	s.mu.Unlock()
}

// CutStreamsAfter makes every later process stream break off after n
// events, without its end frame, as a dropped connection would (0: never).
func (s *Server) CutStreamsAfter(n int) {
	s.mu.Lock()
	s.cutAfter = n
	s.mu.Unlock()
}

// Kill makes a sandbox's envd unreachable (502) and ends its processes,
// as a crashed VM.
func (s *Server) Kill(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.sandboxes[id]; sb != nil {
		sb.Dead = true
		s.killSandboxProcesses(sb)
	}
}

// Sandboxes returns the running sandboxes.
func (s *Server) Sandboxes() []Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sandbox
	for _, sb := range s.sandboxes {
		out = append(out, *sb)
	}
	return out
}

func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("POST /sandboxes", s.create)
	api.HandleFunc("GET /v2/sandboxes", s.list)
	api.HandleFunc("GET /sandboxes/{id}", s.get)
	api.HandleFunc("POST /sandboxes/{id}/timeout", s.setTimeout)
	api.HandleFunc("POST /sandboxes/{id}/connect", s.connect)
	api.HandleFunc("DELETE /sandboxes/{id}", s.kill)
	envd := s.envdRoutes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		s.mu.Lock()
		s.records = append(s.records, Record{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		s.reapExpired()
		s.mu.Unlock()
		s.cmu.Lock()
		latency := s.latency
		if s.inFlight == 0 {
			s.counts.RoundTrips++
		}
		s.inFlight++
		gen := s.gen
		s.cmu.Unlock()
		defer s.count(func(*Counts) {
			if s.gen == gen {
				s.inFlight--
			}
		})
		wait(r, latency)
		if r.Header.Get("E2b-Sandbox-Id") != "" {
			s.count(func(c *Counts) { c.EnvdRequests++ })
			envd.ServeHTTP(w, r)
			return
		}
		s.count(func(c *Counts) { c.APIRequests++ })
		if r.Header.Get("X-API-Key") != s.cfg.APIKey {
			apiError(w, http.StatusUnauthorized, "Invalid API key")
			return
		}
		api.ServeHTTP(w, r)
	})
}

// reapExpired removes sandboxes past their end. Callers hold s.mu.
func (s *Server) reapExpired() {
	for id, sb := range s.sandboxes {
		if time.Now().After(sb.End) {
			s.killSandboxProcesses(sb)
			_ = os.RemoveAll(sb.Dir)
			delete(s.sandboxes, id)
		}
	}
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": status, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TemplateID string            `json:"templateID"`
		Timeout    *int32            `json:"timeout"`
		Metadata   map[string]string `json:"metadata"`
		Secure     bool              `json:"secure"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TemplateID == "" {
		apiError(w, http.StatusBadRequest, "invalid body")
		return
	}
	timeout := int32(15) // the API's default
	if req.Timeout != nil {
		timeout = *req.Timeout
	}
	if timeout <= 0 {
		apiError(w, http.StatusBadRequest, "Timeout must be greater than 0")
		return
	}
	wait(r, s.cfg.CreateDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sandboxes) >= s.cfg.MaxConcurrent {
		w.Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfter))
		apiError(w, http.StatusTooManyRequests, fmt.Sprintf("you have reached the maximum number of concurrent E2B sandboxes (%d)", s.cfg.MaxConcurrent))
		return
	}
	id := "i" + randomHex(10)
	dir := filepath.Join(s.root, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	sb := &Sandbox{ID: id, Template: req.TemplateID, Metadata: req.Metadata, Started: time.Now().UTC(),
		End: time.Now().Add(time.Duration(timeout) * time.Second), Dir: dir}
	out := map[string]any{"sandboxID": id, "templateID": req.TemplateID, "clientID": "fake", "envdVersion": "0.6.13"}
	if s.cfg.Domain != "" {
		out["domain"] = s.cfg.Domain
	}
	if req.Secure {
		sb.Token = randomHex(16)
		out["envdAccessToken"] = sb.Token
	}
	s.sandboxes[id] = sb
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listed(sb *Sandbox) map[string]any {
	return map[string]any{"sandboxID": sb.ID, "templateID": sb.Template, "clientID": "fake", "startedAt": sb.Started,
		"endAt": sb.End.UTC(), "cpuCount": s.cfg.CPUCount, "memoryMB": s.cfg.MemoryMB, "diskSizeMB": 10240,
		"metadata": sb.Metadata, "state": "running", "envdVersion": "0.6.13"}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	want := url.Values{}
	if m := q.Get("metadata"); m != "" {
		var err error
		if want, err = url.ParseQuery(m); err != nil {
			apiError(w, http.StatusBadRequest, "invalid metadata")
			return
		}
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			apiError(w, http.StatusBadRequest, "invalid limit")
			return
		}
		limit = n
	}
	start, _ := strconv.Atoi(q.Get("nextToken"))
	s.mu.Lock()
	var match []*Sandbox
	for _, sb := range s.sandboxes {
		ok := true
		for k := range want {
			if sb.Metadata[k] != want.Get(k) {
				ok = false
			}
		}
		if ok {
			match = append(match, sb)
		}
	}
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	var page []map[string]any
	for i := start; i < len(match) && i < start+limit; i++ {
		page = append(page, s.listed(match[i]))
	}
	s.mu.Unlock()
	if start+limit < len(match) {
		w.Header().Set("X-Next-Token", strconv.Itoa(start+limit))
	}
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *Sandbox {
	sb := s.sandboxes[r.PathValue("id")]
	if sb == nil {
		apiError(w, http.StatusNotFound, "sandbox \""+r.PathValue("id")+"\" not found")
	}
	return sb
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.lookup(w, r); sb != nil {
		out := s.listed(sb)
		if s.cfg.Domain != "" {
			out["domain"] = s.cfg.Domain
		}
		if sb.Token != "" {
			out["envdAccessToken"] = sb.Token
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) timeoutBody(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	var req struct {
		Timeout *int32 `json:"timeout"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Timeout == nil || *req.Timeout <= 0 {
		apiError(w, http.StatusBadRequest, "timeout is required")
		return 0, false
	}
	return time.Duration(*req.Timeout) * time.Second, true
}

func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) {
	d, ok := s.timeoutBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.lookup(w, r); sb != nil {
		sb.End = time.Now().Add(d) // overwrites: may shorten
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	d, ok := s.timeoutBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.lookup(w, r); sb != nil {
		if end := time.Now().Add(d); end.After(sb.End) {
			sb.End = end // only ever extends
		}
		out := map[string]any{"sandboxID": sb.ID, "templateID": sb.Template, "clientID": "fake", "envdVersion": "0.6.13"}
		if s.cfg.Domain != "" {
			out["domain"] = s.cfg.Domain
		}
		if sb.Token != "" {
			out["envdAccessToken"] = sb.Token
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.lookup(w, r); sb != nil {
		s.killSandboxProcesses(sb)
		_ = os.RemoveAll(sb.Dir)
		delete(s.sandboxes, sb.ID)
		w.WriteHeader(http.StatusNoContent)
	}
}
