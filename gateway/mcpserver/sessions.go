package mcpserver

import (
	"container/list"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway"
	"github.com/mark3labs/mcp-go/server"
)

// Defaults for the session limits of the Streamable HTTP transport.
const (
	// DefaultSessionIdleTTL ends sessions idle this long. A gitgate session
	// holds no state of its own (workspaces belong to the project and
	// outlive sessions), so ending one costs a client only a new
	// initialize; 15 minutes covers an agent thinking between calls while
	// leaving an abandoned session's memory held for minutes, not an hour.
	DefaultSessionIdleTTL = 15 * time.Minute
	// DefaultMaxSessionsPerAgent caps the live sessions of one agent. Real
	// clients use one session per connection; 64 leaves room for many
	// parallel connections and for clients that never send DELETE.
	DefaultMaxSessionsPerAgent = 64
)

// errNoSession is what the session id manager reports for an id that is
// unknown, expired, evicted, terminated or another agent's: mcp-go answers
// 404 to it, which tells a client to start a new session.
var errNoSession = errors.New("session not found")

// newSessionID returns an unguessable session id (130 random bits).
func newSessionID() string { return "gitgate-" + rand.Text() }

// sessionStore tracks the live MCP sessions of every agent. Each agent
// holds at most max sessions: opening one more evicts the agent's least
// recently used session, so memory is bounded by agents × max whatever a
// client does. Ids that are not in the store (made up, expired, evicted or
// terminated) are refused; the store keeps no record of ended sessions.
type sessionStore struct {
	max int
	ttl time.Duration
	now func() time.Time

	// release, if set, frees what the MCP layer holds for a session the
	// store dropped to make room (mcp-go keeps every initialized session
	// until it is deleted or idles out).
	release func(id string)

	mu      sync.Mutex
	byID    map[string]*list.Element // of *sessionEntry
	byAgent map[string]*list.List    // most recently used first
}

type sessionEntry struct {
	id, agent string
	seen      time.Time
}

func newSessionStore(max int, ttl time.Duration) *sessionStore {
	return &sessionStore{max: max, ttl: ttl, now: time.Now,
		byID: map[string]*list.Element{}, byAgent: map[string]*list.List{}}
}

// open starts a session for agent and returns its id, evicting the agent's
// least recently used session if it already holds max, and dropping its
// expired ones. The sessions removed are passed to release (outside the
// store's lock), which frees what the MCP layer holds for them.
func (s *sessionStore) open(agent string) string {
	id := newSessionID()
	s.mu.Lock()
	now := s.now()
	l := s.byAgent[agent]
	if l == nil {
		l = list.New()
		s.byAgent[agent] = l
	}
	var removed []string
	for e := l.Back(); e != nil && now.Sub(e.Value.(*sessionEntry).seen) > s.ttl; e = l.Back() {
		removed = append(removed, s.removeLocked(e))
	}
	for l.Len() >= s.max {
		removed = append(removed, s.removeLocked(l.Back()))
	}
	s.byID[id] = l.PushFront(&sessionEntry{id: id, agent: agent, seen: now})
	release := s.release
	s.mu.Unlock()
	if release != nil {
		for _, old := range removed {
			release(old)
		}
	}
	return id
}

// use reports whether agent may use session id, and marks it used. A
// session that is unknown, idle longer than the TTL, or owned by another
// agent is not usable; an expired one is dropped.
func (s *sessionStore) use(id, agent string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return false
	}
	ent := e.Value.(*sessionEntry)
	now := s.now()
	if now.Sub(ent.seen) > s.ttl {
		s.removeLocked(e)
		return false
	}
	if ent.agent != agent {
		return false
	}
	ent.seen = now
	s.byAgent[agent].MoveToFront(e)
	return true
}

// end removes session id if agent owns it; agent "" (the server itself:
// idle sweep, shutdown) may end any session.
func (s *sessionStore) end(id, agent string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[id]; ok && (agent == "" || e.Value.(*sessionEntry).agent == agent) {
		s.removeLocked(e)
	}
}

// removeLocked removes a session and returns its id.
func (s *sessionStore) removeLocked(e *list.Element) string {
	ent := e.Value.(*sessionEntry)
	l := s.byAgent[ent.agent]
	l.Remove(e)
	delete(s.byID, ent.id)
	if l.Len() == 0 {
		delete(s.byAgent, ent.agent)
	}
	return ent.id
}

// count returns the number of live sessions of agent (all agents if "").
func (s *sessionStore) count(agent string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if agent == "" {
		return len(s.byID)
	}
	if l := s.byAgent[agent]; l != nil {
		return l.Len()
	}
	return 0
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// manager it returns acts for the agent the request was authenticated as
// (the guard puts the principal in the request context before mcp-go sees
// the request). mcp-go's idle sweeper resolves with a nil request and gets
// a manager that can only end sessions.
func (s *sessionStore) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := agentSessions{store: s}
	if r != nil {
		if p, ok := gateway.PrincipalFrom(r.Context()); ok {
			m.agent = p.Agent
		}
	}
	return m
}

// agentSessions is the mcp-go session id manager of one agent.
type agentSessions struct {
	store *sessionStore
	agent string // "" when acting for the server (sweeper, shutdown)
}

// Generate opens a new session for the agent (on initialize, and on a GET
// without a session id).
func (m agentSessions) Generate() string {
	if m.agent == "" {
		// mcp-go only generates ids while serving a request, which always
		// carries a principal; an id nobody owns is never usable.
		return newSessionID()
	}
	return m.store.open(m.agent)
}

// Validate refuses ids that are not a live session of the agent. It never
// reports "terminated": ended sessions are forgotten, and mcp-go answers
// 404 to both.
func (m agentSessions) Validate(id string) (isTerminated bool, err error) {
	if m.agent == "" || !m.store.use(id, m.agent) {
		return false, errNoSession
	}
	return false, nil
}

// Terminate ends the session (DELETE, idle sweep, shutdown).
func (m agentSessions) Terminate(id string) (isNotAllowed bool, err error) {
	m.store.end(id, m.agent)
	return false, nil
}
