package redisbind

import (
	"context"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestListShowsLastUse: a read moves a binding's last-used time, as List
// (list_workspaces) reports it, without a write of the binding.
func TestListShowsLastUse(t *testing.T) {
	c := backendtest.Redis(t)
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: time.Hour})
	ctx := t.Context()
	b := binding(key("p", "", "w"), "s1")
	b.LastUsed = time.Now().Add(-30 * time.Minute).UTC()
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, ok, err := s.Get(ctx, b.Key); !ok || err != nil {
		t.Fatal(ok, err)
	}
	list, err := s.List(ctx, "p")
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if lu := list[0].LastUsed; lu.Before(before.Add(-time.Second)) || lu.After(time.Now().Add(time.Second)) {
		t.Errorf("List shows LastUsed %v, want the read at %v", lu, before)
	}
}

// TestCanceledCallerIsNotAnOutage: a caller that gave up gets canceled,
// not "Redis is unavailable".
func TestCanceledCallerIsNotAnOutage(t *testing.T) {
	c := backendtest.Redis(t)
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := s.Get(ctx, key("p", "", "w"))
	if got := backends.CategoryOf(err); got != backends.Canceled {
		t.Fatalf("Get with a cancelled context: %q (%v), want canceled", got, err)
	}
}
