package redisbind

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// pruneScript removes set members whose binding key no longer exists, in
// one atomic step so that a member re-added by a concurrent Put stays.
// KEYS[1] is the set, KEYS[i+1] the binding key of member ARGV[i]. It
// returns how many members were removed.
var pruneScript = redis.NewScript(`
local n = 0
for i, member in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    n = n + redis.call('SREM', KEYS[1], member)
  end
end
return n
`)

// getScript reads a binding and resets its expiry (a read is a use): the
// idle TTL (ARGV[1], ms), or the retention (ARGV[2]) for one with unsaved
// or shelved work (Store.ttlFor), decided in the same atomic step so that
// a concurrent Put of such a binding is never cut back to the TTL. The project's set (KEYS[2]) is extended to
// at least that expiry, never shortened. When KEYS[3] is given, it is the
// set of the sandbox ARGV[3] that the caller expects the binding to name
// (the one it named last time): if it does, that set's expiry is reset to
// the idle TTL too, as Get must, in the same round trip. It returns the
// binding's JSON or nil.
var getScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ttl = tonumber(ARGV[1])
local ok, r = pcall(cjson.decode, v)
if not ok or type(r) ~= 'table' or r.tracked ~= true or r.dirty == true
  or (type(r.unpushed) == 'string' and r.unpushed ~= '')
  or (type(r.shelf) == 'string' and r.shelf ~= '') then
  ttl = tonumber(ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ttl)
local cur = redis.call('PTTL', KEYS[2])
if cur ~= -2 and cur < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
if KEYS[3] and ok and type(r) == 'table' and r.sandbox_id == ARGV[3] then
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
return v
`)

// putScript stores a binding (KEYS[1] = ARGV[1], expiring after ARGV[2]
// ms), adds its member (ARGV[3]) to the project's set (KEYS[2]), whose
// expiry it extends to at least the binding's, and, when KEYS[3] is given,
// to the sandbox's set, which expires after ARGV[4] ms.
var putScript = redis.NewScript(`
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[3])
local cur = redis.call('PTTL', KEYS[2])
if cur < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
if KEYS[3] then
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 1
`)

// Get returns the binding of key and resets its expiry (a read is a use;
// List derives the last use from that expiry).
//
// The sandbox's set is reset in the same round trip when the binding
// names the sandbox it named when this Store last read or wrote it (the
// usual case); otherwise in a second one.
func (s *Store) Get(ctx context.Context, key sandbox.WorkspaceKey) (sandbox.Binding, bool, error) {
	member := key.String()
	keys := []string{s.bindingKey(member), s.projectKey(key.Project)}
	args := []any{s.ttl.Milliseconds(), s.retention.Milliseconds()}
	hint, hinted := s.lastSandbox.Load(member)
	if hinted {
		keys, args = append(keys, s.sandboxKey(hint.(string))), append(args, hint)
	}
	data, err := getScript.Run(ctx, s.client, keys, args...).Text()
	if errors.Is(err, redis.Nil) {
		return sandbox.Binding{}, false, nil
	}
	if err != nil {
		return sandbox.Binding{}, false, unavailable(err)
	}
	b, err := decode(data)
	if err != nil || b.Key != key { // b.Key differs only when two keys share a String()
		return sandbox.Binding{}, false, err
	}
	s.noteSandbox(member, b.SandboxID)
	if b.SandboxID != "" && (!hinted || hint.(string) != b.SandboxID) {
		if err := s.client.PExpire(ctx, s.sandboxKey(b.SandboxID), s.ttl).Err(); err != nil {
			return sandbox.Binding{}, false, unavailable(err)
		}
	}
	return b, true, nil
}

// noteSandbox remembers the sandbox the binding of member names, for the
// next Get's hint; an empty id forgets it. The memory is bounded: when it
// holds maxHints members it is cleared (a Get without a hint costs one
// more round trip, nothing else).
func (s *Store) noteSandbox(member, id string) {
	if id == "" {
		s.lastSandbox.Delete(member)
		return
	}
	if _, ok := s.lastSandbox.Swap(member, id); !ok && s.hints.Add(1) > maxHints {
		s.lastSandbox.Clear()
		s.hints.Store(0)
	}
}

// Put stores b, replacing the binding of its key, and resets the expiry of
// the binding (the TTL, or the retention of a shelved binding) and of its
// sandbox's set, and extends its project's set's.
func (s *Store) Put(ctx context.Context, b sandbox.Binding) error {
	data, err := encode(b)
	if err != nil {
		return err
	}
	member := b.Key.String()
	keys := []string{s.bindingKey(member), s.projectKey(b.Key.Project)}
	if b.SandboxID != "" {
		keys = append(keys, s.sandboxKey(b.SandboxID))
	}
	err = putScript.Run(ctx, s.client, keys, data, s.ttlFor(b).Milliseconds(), member, s.ttl.Milliseconds()).Err()
	if err == nil {
		s.noteSandbox(member, b.SandboxID)
	}
	return unavailable(err)
}

// Delete removes the binding of key; deleting a missing binding is a no-op.
func (s *Store) Delete(ctx context.Context, key sandbox.WorkspaceKey) error {
	member := key.String()
	s.lastSandbox.Delete(member)
	old, found, err := s.read(ctx, member)
	if err != nil || found && old.Key != key { // another key with the same String(): not ours
		return err
	}
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.bindingKey(member))
		p.SRem(ctx, s.projectKey(key.Project), member)
		if found && old.SandboxID != "" {
			p.SRem(ctx, s.sandboxKey(old.SandboxID), member)
		}
		return nil
	})
	return unavailable(err)
}

// read returns the binding stored under member, if any.
func (s *Store) read(ctx context.Context, member string) (sandbox.Binding, bool, error) {
	data, err := s.client.Get(ctx, s.bindingKey(member)).Result()
	if errors.Is(err, redis.Nil) {
		return sandbox.Binding{}, false, nil
	}
	if err != nil {
		return sandbox.Binding{}, false, unavailable(err)
	}
	b, err := decode(data)
	return b, err == nil, err
}

// List returns project's bindings sorted by key, dropping expired members
// from the project's set. A binding's LastUsed is its last read or write
// by any process: every Get and Put resets its expiry to a known length
// (Store.ttlFor), so the time left tells when that was.
func (s *Store) List(ctx context.Context, project string) ([]sandbox.Binding, error) {
	set := s.projectKey(project)
	members, err := s.client.SMembers(ctx, set).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	found, gone, err := s.load(ctx, members)
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 {
		keys := append([]string{set}, s.bindingKeys(gone)...)
		if err := pruneScript.Run(ctx, s.client, keys, toArgs(gone)...).Err(); err != nil {
			return nil, unavailable(err)
		}
	}
	out := slices.DeleteFunc(found, func(b sandbox.Binding) bool { return b.Key.Project != project })
	if err := s.lastUsed(ctx, out); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b sandbox.Binding) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out, nil
}

// lastUsed moves each binding's LastUsed to its last use as told by its
// key's remaining time to live, when that is later than the stored one.
func (s *Store) lastUsed(ctx context.Context, bs []sandbox.Binding) error {
	if len(bs) == 0 {
		return nil
	}
	now := time.Now()
	cmds := make([]*redis.DurationCmd, len(bs))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range bs {
			cmds[i] = p.PTTL(ctx, s.bindingKey(b.Key.String()))
		}
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	for i := range bs {
		left := cmds[i].Val()
		if left <= 0 {
			continue // expired meanwhile, or without expiry
		}
		if used := now.Add(left - s.ttlFor(bs[i])).UTC(); used.After(bs[i].LastUsed) && !used.After(now) {
			bs[i].LastUsed = used
		}
	}
	return nil
}

// load reads the bindings of members with one MGET: those found, and the
// members whose binding has expired.
func (s *Store) load(ctx context.Context, members []string) (found []sandbox.Binding, gone []string, err error) {
	if len(members) == 0 {
		return nil, nil, nil
	}
	values, err := s.client.MGet(ctx, s.bindingKeys(members)...).Result()
	if err != nil {
		return nil, nil, unavailable(err)
	}
	for i, v := range values {
		data, ok := v.(string)
		if !ok {
			gone = append(gone, members[i])
			continue
		}
		b, err := decode(data)
		if err != nil {
			return nil, nil, err
		}
		found = append(found, b)
	}
	return found, gone, nil
}

func (s *Store) bindingKeys(members []string) []string {
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = s.bindingKey(m)
	}
	return keys
}

func toArgs(ss []string) []any {
	args := make([]any, len(ss))
	for i, s := range ss {
		args[i] = s
	}
	return args
}

// UsedWithin reports whether any binding of sandbox id was read or written
// within the TTL: the sandbox's set expires one TTL after its last use by
// any process (see sandbox.UsageTracker).
func (s *Store) UsedWithin(ctx context.Context, id string) (bool, error) {
	n, err := s.client.Exists(ctx, s.sandboxKey(id)).Result()
	if err != nil {
		return true, unavailable(err)
	}
	return n > 0, nil
}
