package lock

import (
	"context"
	"testing"
	"time"
)

func TestReentrantReturnsTheHeldLease(t *testing.T) {
	inner := &Memory{}
	r := Reentrant(inner)
	outer, err := r.Acquire(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithLease(t.Context(), "k", outer)
	in, err := r.Acquire(ctx, "k")
	if err != nil || in.Fence() != outer.Fence() {
		t.Fatalf("inner acquire: %v fence %d, want %d", err, in.Fence(), outer.Fence())
	}
	_ = in.Release(ctx) // must not release the outer lease
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Acquire(short, "k"); err == nil {
		t.Fatal("the borrowed lease's Release freed the key")
	}
	_ = outer.Release(ctx)
	if l, err := r.Acquire(t.Context(), "k"); err != nil || l.Fence() <= outer.Fence() {
		t.Fatalf("after release: %v", err)
	}
}
