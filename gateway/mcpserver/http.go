package mcpserver

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway"
	"github.com/mark3labs/mcp-go/server"
)

// HTTPConfig configures the Streamable HTTP transport.
type HTTPConfig struct {
	// Path is where the endpoint is served. If empty, "/mcp".
	Path string
	// AllowedHosts are the Host header values accepted (host:port, compared
	// case-insensitively). Requests with any other Host get 403, which stops
	// DNS-rebinding attacks. Required.
	AllowedHosts []string
	// AllowedOrigins are the Origin header values accepted from browsers.
	// Requests without an Origin (non-browser clients) are allowed; a
	// present Origin not in this list gets 403, as the MCP spec requires.
	AllowedOrigins []string
	// MaxBodyBytes caps a request body. If zero, 32 MiB (a 10 MiB file
	// written as base64 plus JSON framing fits).
	MaxBodyBytes int64
	// SessionIdleTTL ends sessions idle this long. If zero, one hour.
	SessionIdleTTL time.Duration
}

// HTTPHandler returns the Streamable HTTP endpoint. Every request is checked
// for Host, Origin and a bearer token before it reaches the MCP layer, and
// a session can only be used by the agent that opened it.
func (s *Server) HTTPHandler() http.Handler {
	c := s.cfg.HTTP
	if c.Path == "" {
		c.Path = "/mcp"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.SessionIdleTTL <= 0 {
		c.SessionIdleTTL = time.Hour
	}
	streamable := server.NewStreamableHTTPServer(s.mcp,
		server.WithEndpointPath(c.Path),
		server.WithSessionIdleTTL(c.SessionIdleTTL),
		server.WithStreamableHTTPLogger(s.cfg.Logger),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			if p, ok := gateway.PrincipalFrom(r.Context()); ok {
				return gateway.WithPrincipal(ctx, p)
			}
			return ctx
		}),
	)
	g := &guard{cfg: c, dir: s.cfg.Directory, next: streamable, sessions: map[string]sessionOwner{}}
	mux := http.NewServeMux()
	mux.Handle(c.Path, g)
	return mux
}

// guard authenticates and vets requests for the MCP endpoint.
type guard struct {
	cfg  HTTPConfig
	dir  *gateway.Directory
	next http.Handler

	mu       sync.Mutex
	sessions map[string]sessionOwner
}

type sessionOwner struct {
	agent string
	seen  time.Time
}

const sessionHeader = "Mcp-Session-Id"

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		http.Error(w, "forbidden: Host not allowed", http.StatusForbidden)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !slices.Contains(g.cfg.AllowedOrigins, o) {
		http.Error(w, "forbidden: Origin not allowed", http.StatusForbidden)
		return
	}
	agent, ok := g.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gitgate", error="invalid_token"`)
		http.Error(w, "unauthenticated: a valid agent token is required (Authorization: Bearer <token>)", http.StatusUnauthorized)
		return
	}
	if id := r.Header.Get(sessionHeader); id != "" && !g.sessionUsableBy(id, agent.Name) {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
	r = r.WithContext(gateway.WithPrincipal(r.Context(), agent.Principal()))
	g.next.ServeHTTP(&sessionRecorder{ResponseWriter: w, g: g, agent: agent.Name}, r)
}

func (g *guard) hostAllowed(host string) bool {
	for _, h := range g.cfg.AllowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func (g *guard) authenticate(r *http.Request) (gateway.Agent, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || g.dir == nil {
		return gateway.Agent{}, false
	}
	return g.dir.Authenticate(strings.TrimSpace(token))
}

// sessionUsableBy reports whether agent may use session id: sessions are
// bound to the agent that created them (MCP security best practices), so a
// leaked or guessed id is useless to another agent.
func (g *guard) sessionUsableBy(id, agent string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	owner, known := g.sessions[id]
	if !known {
		return true // unknown ids are rejected by the MCP layer itself
	}
	owner.seen = time.Now()
	g.sessions[id] = owner
	return owner.agent == agent
}

func (g *guard) bind(id, agent string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if len(g.sessions) > 10000 {
		for k, o := range g.sessions {
			if now.Sub(o.seen) > g.cfg.SessionIdleTTL {
				delete(g.sessions, k)
			}
		}
	}
	if _, known := g.sessions[id]; !known {
		g.sessions[id] = sessionOwner{agent: agent, seen: now}
	}
}

// sessionRecorder binds a new session id, sent in a response header, to
// the agent that made the request.
type sessionRecorder struct {
	http.ResponseWriter
	g       *guard
	agent   string
	written bool
}

func (s *sessionRecorder) WriteHeader(code int) {
	s.record()
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionRecorder) Write(b []byte) (int, error) {
	s.record()
	return s.ResponseWriter.Write(b)
}

func (s *sessionRecorder) record() {
	if s.written {
		return
	}
	s.written = true
	if id := s.Header().Get(sessionHeader); id != "" {
		s.g.bind(id, s.agent)
	}
}

// Flush lets streamed (SSE) responses through.
func (s *sessionRecorder) Flush() {
	s.record()
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (s *sessionRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// LoopbackHosts returns the Host values a listener on addr answers to on
// this machine: the address itself, plus localhost, 127.0.0.1 and [::1]
// with its port when it listens on a loopback or unspecified address.
func LoopbackHosts(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{addr}
	}
	hosts := []string{addr}
	ip := net.ParseIP(host)
	if host == "localhost" || ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
			hosts = append(hosts, h+":"+port)
		}
	}
	return hosts
}
