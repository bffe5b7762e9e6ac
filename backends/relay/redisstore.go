package relay

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store in Redis, shared by a fleet: any replica relays an
// operation another minted. Keys are Prefix + "relay:cap:" + the secret's
// hash, expiring with the capability.
type RedisStore struct {
	Client redis.UniversalClient
	Prefix string
}

func (s RedisStore) key(id string) string { return s.Prefix + "relay:cap:" + id }

// Put keeps c until it expires.
func (s RedisStore) Put(ctx context.Context, id string, c Capability) error {
	ttl := time.Until(c.Expires)
	if ttl <= 0 {
		return errors.New("relay: the capability has expired already")
	}
	data, err := encode(c)
	if err != nil {
		return err
	}
	return s.Client.Set(ctx, s.key(id), data, ttl).Err()
}

// Get returns the capability under id.
func (s RedisStore) Get(ctx context.Context, id string) (Capability, bool, error) {
	data, err := s.Client.Get(ctx, s.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Capability{}, false, nil
	}
	if err != nil {
		return Capability{}, false, err
	}
	c, err := decode(data)
	return c, err == nil, err
}

// Delete revokes the capability under id.
func (s RedisStore) Delete(ctx context.Context, id string) error {
	return s.Client.Del(ctx, s.key(id)).Err()
}
