package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultSessionRedisTimeout bounds each Redis call of a RedisSessionStore.
// A request waits this long at most before a replica falls back on what it
// knows (see RedisSessionStore); a healthy Redis answers in well under a
// millisecond, and a Sentinel failover takes seconds, which a 503 and the
// client's retry ride out better than a request held for its length.
const DefaultSessionRedisTimeout = time.Second

// DefaultSessionRedisRetryInterval is how long a RedisSessionStore leaves
// Redis alone after a failed call.
const DefaultSessionRedisRetryInterval = time.Second

// errRedisResting is the error of a call not made because Redis failed
// within the retry interval.
var errRedisResting = errors.New("redis failed moments ago; not retried yet")

// maxPendingEnds bounds the DELETEs a replica remembers to replay while
// Redis is unreachable; beyond it, a session ended then lives until its
// idle TTL.
const maxPendingEnds = 1024

// RedisSessionOptions configures a RedisSessionStore.
type RedisSessionOptions struct {
	// Prefix starts every key (the redis.prefix of the configuration, such
	// as "gitgate:"). Replicas share sessions when they share Redis and
	// Prefix.
	Prefix string
	// IdleTTL ends sessions idle this long. If zero, DefaultSessionIdleTTL.
	IdleTTL time.Duration
	// MaxPerAgent caps one agent's live sessions across all replicas:
	// opening one more ends its least recently used one. If zero,
	// DefaultMaxSessionsPerAgent.
	MaxPerAgent int
	// Timeout bounds each Redis call. If zero, DefaultSessionRedisTimeout.
	Timeout time.Duration
	// RetryInterval: after a failed call, Redis is not called again for
	// this long; requests meanwhile are answered from the local cache (or
	// 503) at once instead of each waiting out the client's retries. If
	// zero, DefaultSessionRedisRetryInterval.
	RetryInterval time.Duration
	// Logger reports when Redis becomes unreachable and reachable again.
	// If nil, slog.Default().
	Logger *slog.Logger
}

// RedisSessionStore is the SessionStore that gateway replicas share
// through Redis (a single server or a Sentinel-managed master; not Redis
// Cluster: its scripts build keys they are not given).
//
// Keys: Prefix+"mcp:session:"+sha256(id) is a hash of the session's agent
// and creation time (Redis server time, in ms), whose TTL is the idle TTL,
// restarted (PEXPIRE) by every use; Prefix+"mcp:agent:"+agent is a sorted
// set of the agent's session hashes scored by last use (server time in
// µs), expiring with its most recently used session, which makes the
// per-agent cap exact across replicas: opening, using and ending a session
// are each one Lua script, so two replicas opening sessions for one agent
// at once cannot both pass the cap, and the least recently used session is
// the one evicted. Redis never holds a session id, only its SHA-256: a
// reader of Redis cannot use a session (nor could it without the agent's
// token). A DELETE on any replica removes the key, so every replica
// refuses the session on its next request.
//
// Redis unreachable (a Sentinel failover, a network fault): each replica
// keeps a local cache of the sessions it opened or saw in use within the
// idle TTL (at most MaxPerAgent per agent), and keeps serving those, with
// the binding to their agent (another agent's token gets 404); a session
// it does not know gets ErrSessionsUnavailable (503), never ErrNoSession
// (404, which would make the client drop a session that may be fine), and
// no session can be opened (503). After a failed call a replica leaves
// Redis alone for RetryInterval, answering from its cache at once
// meanwhile, so an outage costs a request at most one Timeout of waiting.
// A DELETE during the outage (of a session the replica has cached; any
// other gets 503) ends the session in this replica at once, and reaches
// Redis with this replica's next successful Redis call: until then, other
// replicas that have the session cached keep serving it, and if this
// replica stops first, the session lives until its idle TTL. Uses during
// the outage do not restart the TTL in Redis: a session idle in Redis
// longer than the TTL is gone when Redis returns (404; the client starts a
// new session). When Redis answers, it is the authority: a session it does
// not know is refused even if a cache still has it, so a Redis that lost
// its data (restarted without persistence, a failover that lost
// unreplicated writes) costs clients a new initialize, never a session
// bound to the wrong agent.
type RedisSessionStore struct {
	rdb   redis.UniversalClient
	o     RedisSessionOptions
	local *sessionStore // the sessions this replica opened or saw in use

	down      atomic.Bool  // the last Redis call failed (for logging the transitions)
	restUntil atomic.Int64 // no Redis call before this time (UnixNano), after a failure

	mu      sync.Mutex
	pending map[string]string // ended while Redis was unreachable: hash -> agent
}

var _ SessionStore = (*RedisSessionStore)(nil)

// NewRedisSessionStore returns a store on rdb.
func NewRedisSessionStore(rdb redis.UniversalClient, o RedisSessionOptions) *RedisSessionStore {
	if o.IdleTTL <= 0 {
		o.IdleTTL = DefaultSessionIdleTTL
	}
	if o.MaxPerAgent <= 0 {
		o.MaxPerAgent = DefaultMaxSessionsPerAgent
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultSessionRedisTimeout
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultSessionRedisRetryInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &RedisSessionStore{rdb: rdb, o: o, local: newSessionStore(o.MaxPerAgent, o.IdleTTL), pending: map[string]string{}}
}

// sessionHash is the name of a session in Redis: the SHA-256 of its id.
func sessionHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func (s *RedisSessionStore) sessionKey(hash string) string { return s.o.Prefix + "mcp:session:" + hash }
func (s *RedisSessionStore) agentKey(agent string) string  { return s.o.Prefix + "mcp:agent:" + agent }
func (s *RedisSessionStore) ttlMS() string                 { return strconv.FormatInt(s.o.IdleTTL.Milliseconds(), 10) }

// luaNow sets now (Redis server time, in ms: replicas' clocks do not
// matter) and defines score(set): the last-use score of a session joining
// set, the server time in µs, kept above the set's highest score so that
// the order of uses is exact even within one microsecond.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function score(set)
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local top = redis.call('ZREVRANGE', set, 0, 0, 'WITHSCORES')
  if top[2] and tonumber(top[2]) >= us then us = tonumber(top[2]) + 1 end
  return us
end
`

// openScript: KEYS session key, agent set; ARGV hash, agent, ttl ms, max,
// session key prefix. Drops the agent's expired members (and, when at the
// cap, members whose key is gone), evicts the least recently used ones
// beyond max-1, adds the session; returns the evicted hashes.
var openScript = redis.NewScript(luaNow + `
local ttl, max = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', (now - ttl) * 1000)
if redis.call('ZCARD', KEYS[2]) >= max then
  for _, h in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('EXISTS', ARGV[5] .. h) == 0 then redis.call('ZREM', KEYS[2], h) end
  end
end
local evicted = {}
local over = redis.call('ZCARD', KEYS[2]) - max + 1
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do
    redis.call('DEL', ARGV[5] .. old[i])
    evicted[#evicted + 1] = old[i]
  end
end
redis.call('HSET', KEYS[1], 'agent', ARGV[2], 'created', now)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], score(KEYS[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
return evicted
`)

// useScript: KEYS session key, agent set; ARGV hash, agent, ttl ms.
// Returns 1 (the agent's: TTL restarted), 0 (no such session) or -1
// (another agent's: untouched).
var useScript = redis.NewScript(luaNow + `
local owner = redis.call('HGET', KEYS[1], 'agent')
if not owner then return 0 end
if owner ~= ARGV[2] then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], score(KEYS[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

// endScript: KEYS session key, agent set; ARGV hash, agent. Ends the
// session if the agent owns it; returns 1 if it did.
var endScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'agent') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// Open implements SessionStore. It fails with ErrSessionsUnavailable when
// Redis cannot be reached: a session no other replica could check would
// break as soon as the load balancer sent the client elsewhere.
func (s *RedisSessionStore) Open(ctx context.Context, agent string) (string, []string, error) {
	id := newSessionID()
	h := sessionHash(id)
	rctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	evicted, err := s.run(rctx, openScript, []string{s.sessionKey(h), s.agentKey(agent)},
		h, agent, s.ttlMS(), s.o.MaxPerAgent, s.o.Prefix+"mcp:session:").StringSlice()
	if err != nil {
		s.failed(ctx, err)
		return "", nil, fmt.Errorf("%w: opening a session: %w", ErrSessionsUnavailable, err)
	}
	s.reached(ctx)
	ended := s.forgetHashes(agent, evicted)
	s.local.put(id, agent)
	return id, ended, nil
}

// Use implements SessionStore: Redis decides; when it cannot be reached,
// the local cache does, and a session it does not know is
// ErrSessionsUnavailable.
func (s *RedisSessionStore) Use(ctx context.Context, id, agent string) error {
	h := sessionHash(id)
	rctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	res, err := s.run(rctx, useScript, []string{s.sessionKey(h), s.agentKey(agent)}, h, agent, s.ttlMS()).Int()
	if err != nil {
		s.failed(ctx, err)
		if s.endedHere(h) {
			return ErrNoSession
		}
		switch s.local.check(id, agent) {
		case sessionOwned:
			return nil
		case sessionForeign:
			return ErrNoSession
		}
		return fmt.Errorf("%w: checking a session: %w", ErrSessionsUnavailable, err)
	}
	s.reached(ctx)
	switch res {
	case 1:
		s.local.put(id, agent)
		return nil
	case 0:
		s.local.end(id, "")
	}
	return ErrNoSession
}

// End implements SessionStore. When Redis cannot be reached, the session
// ends here at once and on Redis later (see RedisSessionStore); End then
// still returns nil: the client is done with the session either way.
func (s *RedisSessionStore) End(ctx context.Context, id, agent string) error {
	s.local.end(id, agent)
	h := sessionHash(id)
	if err := s.end(ctx, h, agent); err != nil {
		s.failed(ctx, err)
		s.mu.Lock()
		if len(s.pending) < maxPendingEnds {
			s.pending[h] = agent
		}
		s.mu.Unlock()
		return nil
	}
	s.reached(ctx)
	return nil
}

// endedHere reports whether this replica ended session hash while Redis
// was unreachable and has not told Redis yet.
func (s *RedisSessionStore) endedHere(hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[hash]
	return ok
}

// Forget implements SessionStore: the session leaves this replica's cache
// and stays live in Redis.
func (s *RedisSessionStore) Forget(id string) { s.local.end(id, "") }

func (s *RedisSessionStore) end(ctx context.Context, hash, agent string) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	return s.run(ctx, endScript, []string{s.sessionKey(hash), s.agentKey(agent)}, hash, agent).Err()
}

// run runs script, unless Redis failed less than RetryInterval ago.
func (s *RedisSessionStore) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if time.Now().UnixNano() < s.restUntil.Load() {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(errRedisResting)
		return cmd
	}
	return script.Run(ctx, s.rdb, keys, args...)
}

// forgetHashes drops from the cache the sessions of agent whose hashes
// Redis evicted, and returns their ids.
func (s *RedisSessionStore) forgetHashes(agent string, hashes []string) []string {
	if len(hashes) == 0 {
		return nil
	}
	var ids []string
	for _, id := range s.local.ids(agent) {
		if slices.Contains(hashes, sessionHash(id)) {
			s.local.end(id, agent)
			ids = append(ids, id)
		}
	}
	return ids
}

// failed notes a failed Redis call of a request with context ctx, logging
// the first of a run; a call that failed because the request ended (its
// client went away) says nothing about Redis.
func (s *RedisSessionStore) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if !errors.Is(err, errRedisResting) {
		s.restUntil.Store(time.Now().Add(s.o.RetryInterval).UnixNano())
	}
	if !s.down.Swap(true) {
		s.o.Logger.WarnContext(ctx, "mcp session store: Redis unreachable; serving the sessions this replica knows, "+
			"answering 503 for others", "err", err)
	}
}

// reached notes a successful Redis call: it logs the end of an outage and
// replays the DELETEs received during it.
func (s *RedisSessionStore) reached(ctx context.Context) {
	if s.down.Swap(false) {
		s.o.Logger.InfoContext(ctx, "mcp session store: Redis reachable again")
	}
	s.mu.Lock()
	pending := s.pending
	if len(pending) > 0 {
		s.pending = map[string]string{}
	}
	s.mu.Unlock()
	for h, agent := range pending {
		if err := s.end(context.WithoutCancel(ctx), h, agent); err != nil {
			s.mu.Lock()
			if len(s.pending) < maxPendingEnds {
				s.pending[h] = agent
			}
			s.mu.Unlock()
		}
	}
}
