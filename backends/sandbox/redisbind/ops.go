package redisbind

import (
	"context"
	"errors"
	"slices"
	"strings"

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

// Get returns the binding of key and resets its TTL (a read is a use).
func (s *Store) Get(ctx context.Context, key sandbox.WorkspaceKey) (sandbox.Binding, bool, error) {
	data, err := s.client.GetEx(ctx, s.bindingKey(key.String()), s.ttl).Result()
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
	_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.PExpire(ctx, s.projectKey(key.Project), s.ttl)
		p.PExpire(ctx, s.sandboxKey(b.SandboxID), s.ttl)
		return nil
	})
	if err != nil {
		return sandbox.Binding{}, false, unavailable(err)
	}
	return b, true, nil
}

// Put stores b, replacing the binding of its key, and resets the TTLs of
// the binding and of its project and sandbox sets.
func (s *Store) Put(ctx context.Context, b sandbox.Binding) error {
	data, err := encode(b)
	if err != nil {
		return err
	}
	member := b.Key.String()
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.bindingKey(member), data, s.ttl)
		for _, set := range []string{s.projectKey(b.Key.Project), s.sandboxKey(b.SandboxID)} {
			p.SAdd(ctx, set, member)
			p.PExpire(ctx, set, s.ttl)
		}
		return nil
	})
	return unavailable(err)
}

// Delete removes the binding of key; deleting a missing binding is a no-op.
func (s *Store) Delete(ctx context.Context, key sandbox.WorkspaceKey) error {
	member := key.String()
	old, found, err := s.read(ctx, member)
	if err != nil || found && old.Key != key { // another key with the same String(): not ours
		return err
	}
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.bindingKey(member))
		p.SRem(ctx, s.projectKey(key.Project), member)
		if found {
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
// from the project's set.
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
	slices.SortFunc(out, func(a, b sandbox.Binding) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out, nil
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
