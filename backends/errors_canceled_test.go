package backends

import (
	"context"
	"errors"
	"testing"
)

func TestCallerGaveUp(t *testing.T) {
	if got := CategoryOf(context.Canceled); got != Canceled {
		t.Errorf("CategoryOf(context.Canceled) = %q", got)
	}
	if !Canceled.IsClientMistake() {
		t.Error("canceled counts against a backend's health")
	}
	ctx, cancel := context.WithCancel(context.Background())
	store := Errorf(Unavailable, "workspace bindings store (Redis) is unavailable: %w", context.Canceled)
	if err := CallerGaveUp(ctx, store); err != error(store) { //nolint:errorlint // the very same error, not one that wraps it
		t.Errorf("a live caller's error changed: %v", err)
	}
	cancel()
	err := CallerGaveUp(ctx, NotStarted(&Error{Category: Unavailable, Op: "status", Message: "x"}))
	if CategoryOf(err) != Canceled || !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNotStarted) {
		t.Errorf("CallerGaveUp = %v (%q)", err, CategoryOf(err))
	}
	if got := CallerGaveUp(ctx, nil); got != nil {
		t.Errorf("CallerGaveUp(nil) = %v", got)
	}
}
