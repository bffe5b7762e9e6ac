package branches

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/rediserr"
)

// RedisStore is a Store in two Redis hashes, shared by a fleet:
// <prefix>branches:pushed (key → Pushed) and <prefix>branches:deleted
// (id → Deletion). Redis errors carry their category (rediserr): those of
// a failover window are unavailable.
type RedisStore struct {
	rdb            redis.UniversalClient
	pushed, delete string
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns the store under keys starting with prefix.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, pushed: prefix + "branches:pushed", delete: prefix + "branches:deleted"}
}

// RecordPush implements Store.
func (s *RedisStore) RecordPush(ctx context.Context, p Pushed) error {
	return s.put(ctx, s.pushed, p.Key(), p)
}

func (s *RedisStore) put(ctx context.Context, hash, field string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("branches: %w", err)
	}
	if err := s.rdb.HSet(ctx, hash, field, b).Err(); err != nil {
		return rediserr.Wrap("branches store (Redis)", err)
	}
	return nil
}

// Pushed implements Store.
func (s *RedisStore) Pushed(ctx context.Context, project string) ([]Pushed, error) {
	all, err := values[Pushed](ctx, s.rdb, s.pushed)
	out := slices.DeleteFunc(all, func(p Pushed) bool { return project != "" && p.Project != project })
	sortPushed(out)
	return out, err
}

// Forget implements Store.
func (s *RedisStore) Forget(ctx context.Context, key string) error {
	if err := s.rdb.HDel(ctx, s.pushed, key).Err(); err != nil {
		return rediserr.Wrap("branches store (Redis)", err)
	}
	return nil
}

// RecordDeletion implements Store.
func (s *RedisStore) RecordDeletion(ctx context.Context, d Deletion) error {
	return s.put(ctx, s.delete, d.ID, d)
}

// Deletions implements Store.
func (s *RedisStore) Deletions(ctx context.Context) ([]Deletion, error) {
	out, err := values[Deletion](ctx, s.rdb, s.delete)
	slices.SortFunc(out, func(a, b Deletion) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// MarkRestored implements Store.
func (s *RedisStore) MarkRestored(ctx context.Context, id string, at time.Time) error {
	d, ok, err := findDeletion(ctx, s, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("branches: no deletion %q", id)
	}
	d.RestoredAt = &at
	return s.RecordDeletion(ctx, d)
}

// values decodes every value of hash.
func values[T any](ctx context.Context, rdb redis.UniversalClient, hash string) ([]T, error) {
	m, err := rdb.HGetAll(ctx, hash).Result()
	if err != nil {
		return nil, rediserr.Wrap("branches store (Redis)", err)
	}
	out := make([]T, 0, len(m))
	for field, v := range m {
		var x T
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("branches: redis %s %q: %w", hash, field, err)
		}
		out = append(out, x)
	}
	return out, nil
}
