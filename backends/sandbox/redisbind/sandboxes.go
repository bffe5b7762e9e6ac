package redisbind

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// DeleteSandbox removes every binding held by sandbox id, and the sandbox's
// set. It reads the set and the bindings under WATCH and deletes in one
// MULTI/EXEC, retrying when a concurrent write changed them meanwhile, so
// that a binding re-pointed to another sandbox in between is kept.
func (s *Store) DeleteSandbox(ctx context.Context, id string) error {
	for range maxWatchRetries {
		err := s.client.Watch(ctx, func(tx *redis.Tx) error {
			return s.deleteSandbox(ctx, tx, id)
		}, s.sandboxKey(id))
		if !errors.Is(err, redis.TxFailedErr) {
			return unavailable(err)
		}
	}
	return unavailable(errContended)
}

// deleteSandbox is one attempt of DeleteSandbox inside tx, which watches
// the sandbox's set.
func (s *Store) deleteSandbox(ctx context.Context, tx *redis.Tx, id string) error {
	set := s.sandboxKey(id)
	members, err := tx.SMembers(ctx, set).Result()
	if err != nil || len(members) == 0 {
		return err
	}
	if err := tx.Watch(ctx, s.bindingKeys(members)...).Err(); err != nil {
		return err
	}
	values, err := tx.MGet(ctx, s.bindingKeys(members)...).Result()
	if err != nil {
		return err
	}
	doomed, err := heldBy(values, id)
	if err != nil {
		return err
	}
	return s.deleteAll(ctx, tx, set, doomed)
}

// deleteAll deletes the bindings and the sandbox set in one MULTI/EXEC,
// which fails with redis.TxFailedErr if a watched key changed.
func (s *Store) deleteAll(ctx context.Context, tx *redis.Tx, set string, doomed []sandbox.Binding) error {
	_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range doomed {
			p.Del(ctx, s.bindingKey(b.Key.String()))
			p.SRem(ctx, s.projectKey(b.Key.Project), b.Key.String())
		}
		p.Del(ctx, set)
		return nil
	})
	return err
}

// heldBy decodes the MGET values that are bindings of sandbox id.
func heldBy(values []any, id string) ([]sandbox.Binding, error) {
	var out []sandbox.Binding
	for _, v := range values {
		data, ok := v.(string)
		if !ok {
			continue
		}
		b, err := decode(data)
		if err != nil {
			return nil, err
		}
		if b.SandboxID == id {
			out = append(out, b)
		}
	}
	return out, nil
}
