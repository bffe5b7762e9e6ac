package mcpserver

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"
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

// Errors of a SessionStore.
var (
	// ErrNoSession: the session id is unknown, expired, evicted, ended or
	// another agent's. The endpoint answers 404, which tells a client to
	// start a new session (the MCP transport spec's rule), and never says
	// which of these it was.
	ErrNoSession = errors.New("session not found")
	// ErrSessionsUnavailable: the store cannot tell now whether the
	// session is live (its Redis is unreachable). The endpoint answers 503
	// with the error category "unavailable": a client keeps its session
	// and retries, where a 404 would make it drop the session.
	ErrSessionsUnavailable = errors.New("session store unavailable")
)

// SessionStore keeps the live MCP sessions of the Streamable HTTP
// transport: which agent opened each session id, and when it was last
// used. Each agent holds at most a fixed number of live sessions (opening
// one more ends its least recently used one) and a session idle longer than
// a fixed TTL ends. A session is bound to the agent that opened it: no
// other agent can use or end it.
//
// Two implementations exist: the in-memory store (this process only; the
// default) and RedisSessionStore (shared by every gateway replica using the
// same Redis and key prefix, so a session keeps working whichever replica a
// load balancer sends its next request to, and across restarts).
//
// A session carries nothing but this binding: mcp-go serves a request of a
// session it did not initialize with a session object made for the
// request, which is all gitgate's tools need (sessionGate says why). The
// store is not involved at all with protocol version 2026-07-28, which has
// no sessions.
type SessionStore interface {
	// Open starts a session for agent and returns its id, and the ids of
	// sessions it ended to keep the agent within its cap (or because they
	// had expired) that this process knows by id: the caller frees what
	// mcp-go holds for them. On an error no session was opened.
	Open(ctx context.Context, agent string) (id string, ended []string, err error)
	// Use reports whether agent may use session id (nil), and marks it
	// used, which restarts its idle TTL. Otherwise it returns an error
	// that is ErrNoSession or ErrSessionsUnavailable.
	Use(ctx context.Context, id, agent string) error
	// End ends session id if agent owns it (the agent's DELETE); ending
	// an unknown session is not an error.
	End(ctx context.Context, id, agent string) error
	// Forget drops what this process holds for session id without
	// ending it for other processes: mcp-go's idle sweep and shutdown call
	// it. The in-memory store, which no other process shares, ends it.
	Forget(id string)
}

// newSessionID returns an unguessable session id (130 random bits).
func newSessionID() string { return "gitgate-" + rand.Text() }

// sessionStore is the in-memory SessionStore: the live sessions of every
// agent, in this process. Each agent holds at most max sessions: opening
// one more evicts the agent's least recently used session, so memory is
// bounded by agents × max whatever a client does. Ids that are not in the
// store (made up, expired, evicted or terminated) are refused; the store
// keeps no record of ended sessions.
//
// RedisSessionStore uses one as its local cache of the sessions its
// replica opened or saw in use lately (put, check).
type sessionStore struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	byID    map[string]*list.Element // of *sessionEntry
	byAgent map[string]*list.List    // most recently used first
}

type sessionEntry struct {
	id, agent string
	seen      time.Time
}

// sessionVerdict is what the store knows of a session id for an agent.
type sessionVerdict int

const (
	sessionAbsent  sessionVerdict = iota // unknown, ended, or idle past the TTL
	sessionOwned                         // the agent's own, live session
	sessionForeign                       // another agent's live session
)

var _ SessionStore = (*sessionStore)(nil)

func newSessionStore(max int, ttl time.Duration) *sessionStore {
	return &sessionStore{max: max, ttl: ttl, now: time.Now,
		byID: map[string]*list.Element{}, byAgent: map[string]*list.List{}}
}

// Open implements SessionStore; it never fails.
func (s *sessionStore) Open(_ context.Context, agent string) (string, []string, error) {
	id, ended := s.openEnding(agent)
	return id, ended, nil
}

// Use implements SessionStore; the only error is ErrNoSession.
func (s *sessionStore) Use(_ context.Context, id, agent string) error {
	if !s.use(id, agent) {
		return ErrNoSession
	}
	return nil
}

// End implements SessionStore.
func (s *sessionStore) End(_ context.Context, id, agent string) error {
	s.end(id, agent)
	return nil
}

// Forget implements SessionStore: it ends the session (no other process
// could use it).
func (s *sessionStore) Forget(id string) { s.end(id, "") }

// open starts a session for agent and returns its id.
func (s *sessionStore) open(agent string) string {
	id, _ := s.openEnding(agent)
	return id
}

// openEnding starts a session for agent and returns its id, evicting the
// agent's least recently used session if it already holds max, and
// dropping its expired ones; it returns the ids of the sessions removed.
func (s *sessionStore) openEnding(agent string) (id string, removed []string) {
	id = newSessionID()
	s.mu.Lock()
	defer s.mu.Unlock()
	return id, s.insertLocked(id, agent)
}

// put records session id as agent's, used now (the local cache of a shared
// store: a session the shared store has just opened or vouched for). It
// makes room as open does; what it drops is only forgotten here.
func (s *sessionStore) put(id, agent string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[id]; ok {
		if ent := e.Value.(*sessionEntry); ent.agent == agent {
			ent.seen = s.now()
			s.byAgent[agent].MoveToFront(e)
		}
		return
	}
	s.insertLocked(id, agent)
}

// insertLocked adds a session, dropping the agent's expired sessions and
// its least recently used ones beyond max-1 first, and returns the ids it
// dropped.
func (s *sessionStore) insertLocked(id, agent string) (removed []string) {
	now := s.now()
	l := s.byAgent[agent]
	if l == nil {
		l = list.New()
		s.byAgent[agent] = l
	}
	for e := l.Back(); e != nil && now.Sub(e.Value.(*sessionEntry).seen) > s.ttl; e = l.Back() {
		removed = append(removed, s.removeLocked(e))
	}
	for l.Len() >= s.max {
		removed = append(removed, s.removeLocked(l.Back()))
	}
	s.byID[id] = l.PushFront(&sessionEntry{id: id, agent: agent, seen: now})
	return removed
}

// use reports whether agent may use session id, and marks it used. A
// session that is unknown, idle longer than the TTL, or owned by another
// agent is not usable; an expired one is dropped.
func (s *sessionStore) use(id, agent string) bool { return s.check(id, agent) == sessionOwned }

// check says whether session id is agent's, another agent's or not live,
// marking it used when it is agent's and dropping it if it expired.
func (s *sessionStore) check(id, agent string) sessionVerdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return sessionAbsent
	}
	ent := e.Value.(*sessionEntry)
	now := s.now()
	if now.Sub(ent.seen) > s.ttl {
		s.removeLocked(e)
		return sessionAbsent
	}
	if ent.agent != agent {
		return sessionForeign
	}
	ent.seen = now
	s.byAgent[agent].MoveToFront(e)
	return sessionOwned
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

// ids returns the ids of agent's sessions.
func (s *sessionStore) ids(agent string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if l := s.byAgent[agent]; l != nil {
		for e := l.Front(); e != nil; e = e.Next() {
			out = append(out, e.Value.(*sessionEntry).id)
		}
	}
	return out
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
