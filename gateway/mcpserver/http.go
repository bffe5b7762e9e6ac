package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/gateway"
	"github.com/mark3labs/mcp-go/server"
	"github.com/redis/go-redis/v9"
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
	// SessionIdleTTL ends sessions idle this long. If zero,
	// DefaultSessionIdleTTL (15 minutes).
	SessionIdleTTL time.Duration
	// MaxSessionsPerAgent caps the live sessions of one agent: opening one
	// more ends the agent's least recently used session (whose next
	// request gets 404, so its client starts a new session). If zero,
	// DefaultMaxSessionsPerAgent (64).
	MaxSessionsPerAgent int
	// SessionRedis, if set, keeps sessions in Redis (RedisSessionStore),
	// shared by every replica on the same Redis and SessionKeyPrefix: a
	// session works on whichever replica serves its next request, and
	// outlives the replica that opened it; SessionIdleTTL and
	// MaxSessionsPerAgent then count over all replicas. If nil, sessions
	// live in this process only.
	SessionRedis redis.UniversalClient
	// SessionKeyPrefix starts the Redis keys of sessions (redis.prefix).
	SessionKeyPrefix string
}

// HTTPHandler returns the Streamable HTTP endpoint. Every request is checked
// for Host, Origin and a bearer token before it reaches the MCP layer, and
// a session can only be used by the agent that opened it, while it lives:
// any other session id gets 404, as the MCP transport spec requires (and
// 503, category unavailable, when a shared session store cannot be
// reached to tell; see sessionGate).
//
// The handler also answers the OAuth discovery and registration paths that
// MCP clients probe after a 401 (see oauthPaths) with 404 and a JSON error
// saying that gitgate takes a static bearer token and has no OAuth
// authorization server, so that those clients report the token problem
// instead of starting an authorization flow that cannot succeed.
//
// The handler sweeps idle sessions in the background until Close.
func (s *Server) HTTPHandler() http.Handler {
	c := s.cfg.HTTP
	if c.Path == "" {
		c.Path = "/mcp"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.SessionIdleTTL <= 0 {
		c.SessionIdleTTL = DefaultSessionIdleTTL
	}
	if c.MaxSessionsPerAgent <= 0 {
		c.MaxSessionsPerAgent = DefaultMaxSessionsPerAgent
	}
	local, store := newSessionStores(c, s.cfg.Logger)
	gate := &sessionGate{store: store, log: s.cfg.Logger}
	streamable := server.NewStreamableHTTPServer(s.mcp,
		server.WithEndpointPath(c.Path),
		server.WithSessionIdManagerResolver(gate),
		server.WithSessionIdleTTL(c.SessionIdleTTL),
		server.WithStreamableHTTPLogger(s.cfg.Logger),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			if p, ok := gateway.PrincipalFrom(r.Context()); ok {
				return gateway.WithPrincipal(ctx, p)
			}
			return ctx
		}),
	)
	s.mu.Lock()
	s.streamable = append(s.streamable, streamable)
	s.mu.Unlock()
	gate.release = func(id string) { endSession(streamable, id) }
	g := &guard{cfg: c, dir: s.cfg.Directory, next: streamable, gate: gate, sessions: local, log: s.cfg.Logger}
	mux := http.NewServeMux()
	mux.Handle(c.Path, s.countHTTP(g))
	noOAuth := g.checkHost(http.HandlerFunc(answerNoOAuth))
	for _, p := range oauthPaths {
		for _, pattern := range []string{p, p + "/"} {
			if pattern != c.Path && !strings.HasPrefix(c.Path, pattern) {
				mux.Handle(pattern, noOAuth)
			}
		}
	}
	return mux
}

// endSession frees mcp-go's state for a session gitgate has ended, through
// the only public way there is: a DELETE of the session, sent in-process
// (it reaches mcp-go directly, not the guard, and its answer is dropped).
func endSession(h http.Handler, id string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodDelete, "/", nil)
	if err != nil {
		return
	}
	req.Header.Set(sessionHeader, id)
	h.ServeHTTP(discardResponse{header: http.Header{}}, req)
}

// discardResponse is a ResponseWriter that drops everything.
type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}

// oauthPaths are the paths MCP clients (the TypeScript SDK, the MCP
// Inspector) try when a 401 makes them look for an OAuth authorization
// server: RFC 9728 protected resource metadata, RFC 8414 and OpenID
// authorization server metadata (each also with the endpoint's path
// appended), then the fallback endpoints they assume when no metadata
// exists. Each answers 404 with noOAuthMessage.
var oauthPaths = []string{
	"/.well-known/oauth-protected-resource",
	"/.well-known/oauth-authorization-server",
	"/.well-known/openid-configuration",
	"/register",
	"/authorize",
	"/token",
}

// noOAuthMessage tells a user whose client went looking for OAuth what to
// do instead.
const noOAuthMessage = "gitgate does not use OAuth and has no authorization server: " +
	"the MCP request was refused because its bearer token is missing or wrong. " +
	"Configure the client to send the header 'Authorization: Bearer <token>' with the token of a gitgate agent."

// answerNoOAuth answers an OAuth discovery or registration request with
// 404 and an RFC 6749 style error body, which the TypeScript SDK turns into
// an error carrying error_description.
func answerNoOAuth(w http.ResponseWriter, _ *http.Request) {
	writeJSONError(w, http.StatusNotFound, "invalid_request", noOAuthMessage)
}

// guard authenticates and vets requests for the MCP endpoint.
type guard struct {
	cfg  HTTPConfig
	dir  *gateway.Directory
	next http.Handler
	gate *sessionGate
	// sessions is this process's own record of sessions: the store
	// itself, or a shared store's local cache.
	sessions *sessionStore
	log      *slog.Logger
}

const sessionHeader = "Mcp-Session-Id"

// authFailure is why a request was not authenticated; its values are the
// RFC 6750 error codes sent in WWW-Authenticate ("" when the request had
// no credentials at all, which RFC 6750 §3.1 answers without a code).
type authFailure string

const (
	authOK        authFailure = "ok"
	authMissing   authFailure = ""
	authMalformed authFailure = "invalid_request"
	authUnknown   authFailure = "invalid_token"
)

// authMessages are the texts sent (in WWW-Authenticate error_description
// and in the JSON body) for each failure. They never quote the header.
var authMessages = map[authFailure]string{
	authMissing: "no bearer token: gitgate needs the header 'Authorization: Bearer <token>' " +
		"with the token of a gitgate agent (gitgate does not use OAuth)",
	authMalformed: "malformed Authorization header: gitgate needs 'Authorization: Bearer <token>' " +
		"with the token of a gitgate agent (gitgate does not use OAuth)",
	authUnknown: "wrong token: the bearer token is not the token of any gitgate agent; " +
		"check the token configured in the client (gitgate does not use OAuth)",
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		http.Error(w, "forbidden: Host not allowed", http.StatusForbidden)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !slices.Contains(g.cfg.AllowedOrigins, o) {
		http.Error(w, "forbidden: Origin not allowed", http.StatusForbidden)
		return
	}
	agent, failure := g.authenticate(r)
	if failure != authOK {
		g.refuse(w, r, failure)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
	// A session id this agent may not use gets 404 on every method (see
	// sessionGate.admit), and 503 when the session store cannot tell.
	r, ticket, ok := g.gate.admit(w, r, agent.Name)
	if !ok {
		return
	}
	r = r.WithContext(gateway.WithPrincipal(r.Context(), agent.Principal()))
	g.next.ServeHTTP(w, r)
	g.gate.done(r.Context(), ticket)
}

// refuse answers an unauthenticated request with 401, a Bearer challenge
// (RFC 6750 §3: realm, and for a bad token or header the error code and a
// description) and the same description in a JSON body. The challenge has
// no resource_metadata: gitgate has no authorization server to point to.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, failure authFailure) {
	msg := authMessages[failure]
	challenge := `Bearer realm="gitgate"`
	code := string(failure)
	if failure != authMissing {
		challenge += fmt.Sprintf(`, error="%s", error_description="%s"`, failure, msg)
	} else {
		code = "unauthenticated"
	}
	g.log.InfoContext(r.Context(), "mcp request refused: not authenticated",
		"reason", code, "remote", r.RemoteAddr, "method", r.Method)
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSONError(w, http.StatusUnauthorized, code, msg)
}

// writeJSONError writes {"error": code, "error_description": msg}.
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "<token>" stays readable in clients that show the body
	_ = enc.Encode(map[string]string{"error": code, "error_description": msg})
}

func (g *guard) hostAllowed(host string) bool {
	for _, h := range g.cfg.AllowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// checkHost wraps h with the Host check of the MCP endpoint.
func (g *guard) checkHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			http.Error(w, "forbidden: Host not allowed", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authenticate finds the agent whose token the request carries as
// "Authorization: Bearer <token>" (scheme case-insensitive).
func (g *guard) authenticate(r *http.Request) (gateway.Agent, authFailure) {
	header := r.Header.Values("Authorization")
	if len(header) == 0 {
		return gateway.Agent{}, authMissing
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(header[0]), " ")
	token = strings.TrimSpace(token)
	if len(header) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return gateway.Agent{}, authMalformed
	}
	if g.dir == nil {
		return gateway.Agent{}, authUnknown
	}
	a, found := g.dir.Authenticate(token)
	if !found {
		return gateway.Agent{}, authUnknown
	}
	return a, authOK
}

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
