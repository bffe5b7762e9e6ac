package pause_test

import (
	"context"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/pause"
)

func TestForWaitsTheWholeDuration(t *testing.T) {
	start := time.Now()
	if !pause.For(t.Context(), 10*time.Millisecond) {
		t.Fatal("For reported its context ended, but it had not")
	}
	if waited := time.Since(start); waited < 10*time.Millisecond {
		t.Fatalf("For returned after %v, before its 10ms", waited)
	}
}

func TestForEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if pause.For(ctx, time.Hour) {
		t.Fatal("For reported the whole hour passed, but its context had ended")
	}

	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- pause.For(ctx, time.Hour) }()
	cancel()
	if <-done {
		t.Fatal("For reported the whole hour passed after its context was cancelled")
	}
}
