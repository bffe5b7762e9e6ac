package redislock

import "github.com/redis/go-redis/v9"

// The Lua scripts. Redis runs each script atomically, so no other client's
// command falls between its steps.
var (
	// acquireScript grants the lock and takes the next fence in one step.
	// KEYS[1] is the lock key, KEYS[2] the fence key; ARGV[1] is the token,
	// ARGV[2] the TTL in milliseconds. It returns the new fence (at least 1)
	// or 0 when the key is held. INCR runs only after SET NX succeeded; if
	// it fails (the fence key holds a non-integer), the grant is undone so
	// that no lock exists without a fence.
	acquireScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local fence = redis.pcall('INCR', KEYS[2])
if type(fence) == 'table' and fence.err then
  redis.call('DEL', KEYS[1])
end
return fence
`)

	// renewScript extends the lock only while it still holds our token
	// (compare-and-PEXPIRE). KEYS[1] is the lock key; ARGV[1] is the token,
	// ARGV[2] the TTL in milliseconds. It returns 1 when renewed, 0 when the
	// key is gone or held by another token.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

	// releaseScript deletes the lock only while it still holds our token
	// (compare-and-delete), so a holder whose lease expired cannot delete its
	// successor's lock. KEYS[1] is the lock key; ARGV[1] is the token. It
	// returns 1 when deleted, 0 otherwise.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
)
