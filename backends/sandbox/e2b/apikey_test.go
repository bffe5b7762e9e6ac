package e2b_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// TestRotatedAPIKeyAppliesToTheNextRequest: with APIKeyFunc, every
// request sends the key it returns at that moment (a key file re-read
// after a rotation), and errors never carry a key.
func TestRotatedAPIKeyAppliesToTheNextRequest(t *testing.T) {
	t.Parallel()
	s := fake(t, e2bfake.Config{})
	const staleKey = "e2b_staleKEY0123456789abcdef0123456789ab"
	var mu sync.Mutex
	key := staleKey
	setKey := func(k string) { mu.Lock(); key = k; mu.Unlock() }
	a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), RetryBase: 10 * time.Millisecond,
		APIKeyFunc: func() string { mu.Lock(); defer mu.Unlock(); return key }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = a.Get(ctx, "iabc")
	wantCategory(t, err, backends.Unauthenticated)
	if strings.Contains(err.Error(), staleKey) {
		t.Fatalf("the error carries the key: %v", err)
	}
	setKey(apiKey) // the rotated file now holds the key E2B accepts
	if _, err := a.Get(ctx, "inope"); backends.CategoryOf(err) != backends.NotFound {
		t.Fatalf("with the rotated key: %v, want not_found from an authenticated request", err)
	}
	setKey(staleKey)
	_, err = a.Get(ctx, "iabc")
	wantCategory(t, err, backends.Unauthenticated)
}
