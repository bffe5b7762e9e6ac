package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// sessionGate puts a SessionStore between the HTTP endpoint and mcp-go.
// The guard asks it to admit each authenticated request: it checks the
// session id the request carries and opens the session an initialize (or a
// GET without a session id) will be given, answering 404 or 503 itself
// when it must. mcp-go's session id manager, which the gate resolves per
// request, then only carries out what was decided for the request, so that
// a request costs one store call (one Redis round trip with a shared store)
// and every store failure is answered by the gate, not by mcp-go (which
// would turn any manager error into 404).
//
// # What a session is to mcp-go
//
// mcp-go v1.2.1 serves a non-initialize POST whose session id the manager
// accepts even when this process never saw that session initialize: it
// makes a session object for the request (handlePost, "ephemeral
// session"), which reports itself initialized. That is what lets a session
// opened on one replica be used on another, or after the replica that
// opened it restarted. What such a request cannot see is state mcp-go keeps
// per session from earlier requests on another process: the log level set
// by logging/setLevel (gitgate does not offer the logging capability, so
// none is set), per-session tools and resources (gitgate has none: its
// tools are the server's), and the initialize's client info (this mcp-go
// session type does not keep it, and gitgate never reads it). Progress
// notifications go on the response stream of the call that asked for them,
// so they work on any replica. A GET notification stream is served by the
// replica that holds it; gitgate sends nothing on it (its tool list never
// changes).
//
// Protocol version 2026-07-28 (mcp-go's "modern" era) has no sessions: a
// modern request carries no Mcp-Session-Id, mcp-go mints none, and the
// store is not involved; any replica serves any request.
type sessionGate struct {
	store SessionStore
	// release frees what mcp-go holds for a session the store ended to
	// make room (mcp-go keeps every session it initialized until it is
	// deleted or idles out).
	release func(id string)
	log     *slog.Logger
}

// sessionTicket is what the gate decided for one request.
type sessionTicket struct {
	agent  string
	used   string // the session id the request carries, found usable by agent
	opened string // the session opened for mcp-go to give out, if any
	taken  bool   // mcp-go asked for opened (Generate)
}

type ticketKey struct{}

// admit checks r's session id and opens the session r will be given, for
// agent. It answers r itself and returns false when the id is not a live
// session of agent (404, as the MCP transport spec requires: the client
// starts a new session) or when the store cannot tell or cannot open (503,
// category unavailable: the client keeps its session and retries). Every
// method is checked: mcp-go checks a POST's session itself but not a GET's,
// a DELETE of another agent's session would end it, and an initialize
// carrying another agent's id must not be answered as if the id were fine.
func (g *sessionGate) admit(w http.ResponseWriter, r *http.Request, agent string) (*http.Request, *sessionTicket, bool) {
	t := &sessionTicket{agent: agent}
	if id := r.Header.Get(sessionHeader); id != "" {
		if err := g.store.Use(r.Context(), id, agent); err != nil {
			g.refuse(w, r, err)
			return r, nil, false
		}
		t.used = id
	}
	r, opens := opensSession(r)
	if opens {
		id, ended, err := g.store.Open(r.Context(), agent)
		if err != nil {
			g.refuse(w, r, err)
			return r, nil, false
		}
		g.releaseAll(ended)
		t.opened = id
	}
	return r.WithContext(context.WithValue(r.Context(), ticketKey{}, t)), t, true
}

// done ends the session opened for a request that mcp-go refused before
// giving it out (a malformed initialize), so it does not count against the
// agent's cap until it expires.
func (g *sessionGate) done(ctx context.Context, t *sessionTicket) {
	if t.opened != "" && !t.taken {
		if err := g.store.End(context.WithoutCancel(ctx), t.opened, t.agent); err != nil {
			g.log.WarnContext(ctx, "unused mcp session not ended", "agent", t.agent, "err", err)
		}
	}
}

func (g *sessionGate) releaseAll(ids []string) {
	if g.release != nil {
		for _, id := range ids {
			g.release(id)
		}
	}
}

// refuse answers a request whose session the store refused.
func (g *sessionGate) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNoSession) {
		writeJSONError(w, http.StatusNotFound, "session_not_found",
			"unknown or ended MCP session: start a new session with initialize")
		return
	}
	// The store logs the outage once; each refusal is a detail.
	g.log.DebugContext(r.Context(), "mcp request refused: session store unavailable", "method", r.Method, "err", err)
	w.Header().Set("Retry-After", "1")
	writeJSONError(w, http.StatusServiceUnavailable, "unavailable",
		"the MCP session store is unavailable: retry shortly with the same session (it is not lost)")
}

// opensSession reports whether mcp-go will generate a session id for r: an
// initialize POST, or a GET without a session id. Only a POST that carries
// neither a session id nor a 2026-07-28 protocol version can be an
// initialize that admit must open a session for (an initialize carrying a
// session id is left to Generate); opensSession reads that POST's body
// and puts it back for mcp-go, with the read error, if any, which mcp-go
// then reports as it would have. Other requests' bodies (tool calls, up to
// MaxBodyBytes) are not read twice.
func opensSession(r *http.Request) (*http.Request, bool) {
	switch {
	case r.Method == http.MethodGet:
		return r, r.Header.Get(sessionHeader) == ""
	case r.Method != http.MethodPost || r.Body == nil || r.Header.Get(sessionHeader) != "" ||
		mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)):
		return r, false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errorReader{err}))
		return r, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		Method mcp.MCPMethod `json:"method"`
	}
	return r, json.Unmarshal(body, &msg) == nil && msg.Method == mcp.MethodInitialize
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// manager it returns carries out what admit decided for r. mcp-go's idle
// sweeper and its shutdown resolve with a nil request, and the in-process
// DELETE that frees an evicted session has no ticket: they get a manager
// that can only forget sessions.
func (g *sessionGate) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := ticketManager{gate: g, ctx: context.Background()}
	if r != nil {
		m.ctx = r.Context()
		m.ticket, _ = r.Context().Value(ticketKey{}).(*sessionTicket)
	}
	return m
}

// ticketManager is the mcp-go session id manager of one request.
type ticketManager struct {
	gate   *sessionGate
	ctx    context.Context
	ticket *sessionTicket // nil when acting for the server (sweeper, shutdown)
}

// Generate gives out the session admit opened for the request. Where admit
// did not open one (an initialize that carries a session id, whose id
// admit has checked), a session is opened here; if the store fails then,
// the id returned is one no store knows, so the client's next request gets
// 404 and it starts again.
func (m ticketManager) Generate() string {
	t := m.ticket
	if t == nil {
		return newSessionID() // never usable: no agent owns it
	}
	if t.opened != "" && !t.taken {
		t.taken = true
		return t.opened
	}
	id, ended, err := m.gate.store.Open(m.ctx, t.agent)
	if err != nil {
		m.gate.log.WarnContext(m.ctx, "mcp session not opened", "agent", t.agent, "err", err)
		return newSessionID()
	}
	m.gate.releaseAll(ended)
	return id
}

// Validate accepts only the id admit found usable for this request; it
// never reports "terminated" (ended sessions are forgotten, and mcp-go
// answers 404 to both).
func (m ticketManager) Validate(id string) (isTerminated bool, err error) {
	if m.ticket == nil || id == "" || id != m.ticket.used {
		return false, ErrNoSession
	}
	return false, nil
}

// Terminate ends the session for the agent's DELETE (admit has checked that
// it is the agent's); acting for the server (idle sweep, shutdown), it only
// makes the store forget it here.
func (m ticketManager) Terminate(id string) (isNotAllowed bool, err error) {
	if m.ticket == nil {
		m.gate.store.Forget(id)
		return false, nil
	}
	return false, m.gate.store.End(m.ctx, id, m.ticket.agent)
}

// newSessionStores returns the session store c asks for, and the
// in-memory store that is this process's own record of sessions (the
// store itself, or the shared store's local cache).
func newSessionStores(c HTTPConfig, log *slog.Logger) (*sessionStore, SessionStore) {
	if c.SessionRedis == nil {
		local := newSessionStore(c.MaxSessionsPerAgent, c.SessionIdleTTL)
		return local, local
	}
	shared := NewRedisSessionStore(c.SessionRedis, RedisSessionOptions{Prefix: c.SessionKeyPrefix,
		IdleTTL: c.SessionIdleTTL, MaxPerAgent: c.MaxSessionsPerAgent, Logger: log})
	return shared.local, shared
}
