package relay_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/relay"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestRedisStoreSharesCapabilities: a capability minted through one
// replica's store resolves through another's, and revoking it anywhere
// revokes it everywhere (real Redis).
func TestRedisStoreSharesCapabilities(t *testing.T) {
	rc := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, rc)
	a, b := relay.RedisStore{Client: rc, Prefix: prefix}, relay.RedisStore{Client: rc, Prefix: prefix}
	secret, revoke, err := relay.Mint(t.Context(), a, relay.Capability{Project: "alpha", Remote: "https://git.example/o/r.git", Dir: relay.Fetch}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := relay.Resolve(t.Context(), b, secret); err != nil || c.Project != "alpha" || c.Dir != relay.Fetch {
		t.Fatalf("resolved on the other replica: %+v %v", c, err)
	}
	keys, _ := rc.Keys(t.Context(), prefix+"*").Result()
	for _, k := range keys {
		v, _ := rc.Get(t.Context(), k).Result()
		if strings.Contains(k+v, secret) {
			t.Errorf("the secret is stored in Redis: %s", k)
		}
	}
	if err := revoke(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Resolve(t.Context(), b, secret); !errors.Is(err, relay.ErrNoCapability) {
		t.Errorf("after revoking: %v", err)
	}
	// An expired capability resolves nowhere.
	short, _, err := relay.Mint(t.Context(), a, relay.Capability{Project: "alpha", Remote: "https://git.example/o/r.git", Dir: relay.Push}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, "an expired capability resolves nowhere", func() error {
		if _, err := relay.Resolve(t.Context(), b, short); !errors.Is(err, relay.ErrNoCapability) {
			return fmt.Errorf("it still resolves: %w", err)
		}
		return nil
	})
}
