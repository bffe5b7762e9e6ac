package backendtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestSentinelFailover: the harness's set fails over twice (there and back)
// and a failover client follows it, reading what it wrote before.
func TestSentinelFailover(t *testing.T) {
	s := backendtest.StartSentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first, err := s.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first != s.Nodes()[0] {
		t.Fatalf("master %s, want the first node %s", first, s.Nodes()[0])
	}
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{s.Nodes()[1], s.Nodes()[0]} {
		got, err := s.Failover(ctx)
		if err != nil {
			t.Fatalf("failover %d: %v", i+1, err)
		}
		if got != want {
			t.Fatalf("failover %d: new master %s, want %s", i+1, got, want)
		}
		if m, err := s.Master(ctx); err != nil || m != want {
			t.Fatalf("failover %d: Master = %s, %v; want %s", i+1, m, err, want)
		}
		var v string
		testkit.EventuallyNil(t, "a read through the failover client", func() error {
			v, err = c.Get(ctx, "k").Result()
			return err
		})
		if v != "v" {
			t.Fatalf("failover %d: read %q through the failover client", i+1, v)
		}
	}
}
