package journal

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

func TestFencing(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	e := mustStart(t, j, begin(t, Key{"p", "w", "k"}, "push", nil, 5), Proceed)
	ctx := testCtx(t)

	if err := j.Takeover(ctx, e.ID, 7); err != nil {
		t.Fatalf("Takeover(7): %v", err)
	}
	wantErr(t, j.Takeover(ctx, e.ID, 7), backends.Conflict, ErrFenced)
	wantErr(t, j.Takeover(ctx, e.ID, 6), backends.Conflict, ErrFenced)
	wantErr(t, j.Settle(ctx, e.ID, 5, Succeeded, []byte(`{"stale":true}`), "", ""), backends.Conflict, ErrFenced)

	got, err := j.Get(ctx, e.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.State != Started || got.Fence != 7 || got.Attempts != 2 || got.Result != nil || !got.SettledAt.IsZero() {
		t.Fatalf("entry after a stale settle = %+v, want started, fence 7, attempts 2, no result", got)
	}

	if err := j.Settle(ctx, e.ID, 7, Failed, nil, "conflict", "lease failed"); err != nil {
		t.Fatalf("Settle(7): %v", err)
	}
	wantErr(t, j.Settle(ctx, e.ID, 7, Succeeded, nil, "", ""), backends.Conflict, ErrFenced)
	wantErr(t, j.Takeover(ctx, e.ID, 9), backends.Conflict, ErrFenced)
	got, err = j.Get(ctx, e.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.State != Failed || got.Fence != 7 || got.ErrorCategory != "conflict" || got.ErrorMessage != "lease failed" || got.Reconciled {
		t.Fatalf("settled entry = %+v", got)
	}
}

func TestTakeoverRefreshesClaim(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{InFlightTimeout: 200 * time.Millisecond})
	b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
	e := mustStart(t, j, b, Proceed)
	waitStale(t, j, b)
	mustStart(t, j, b, Reconcile)
	if err := j.Takeover(testCtx(t), e.ID, 2); err != nil {
		t.Fatalf("Takeover: %v", err)
	}
	// The retry is running again: a duplicate waits instead of reconciling.
	_, _, err := j.Start(testCtx(t), b)
	wantErr(t, err, backends.Conflict, ErrInFlight)
}

func TestStaleEntryIsReconciled(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{InFlightTimeout: 200 * time.Millisecond})
	ctx := testCtx(t)
	b := begin(t, Key{"p", "w", "stale"}, "push", pushReq{Branch: "main"}, 4)
	b.Prepared = []byte(`{"target":"abc","old":"def"}`)
	e := mustStart(t, j, b, Proceed)
	fresh := mustStart(t, j, begin(t, Key{"p", "w", "fresh"}, "push", nil, 1), Proceed)
	t0 := time.Now()

	waitStale(t, j, b)
	for time.Since(t0) < 1500*time.Millisecond { // a wide gap, so that a busy machine cannot close it
		time.Sleep(10 * time.Millisecond)
	}
	late := mustStart(t, j, begin(t, Key{"p", "w", "late"}, "push", nil, 1), Proceed)
	olderThan := time.Since(t0) / 2 // e and fresh are older; late is younger unless this test stalls that long
	r := mustStart(t, j, b, Reconcile)
	if r.ID != e.ID || r.State != Started || r.Fence != 4 || !jsonEqual(t, r.Prepared, b.Prepared) {
		t.Fatalf("reconcile entry = %+v", r)
	}

	old, err := j.Unsettled(ctx, olderThan)
	if err != nil {
		t.Fatalf("Unsettled: %v", err)
	}
	if len(old) != 2 || old[0].ID != e.ID || old[1].ID != fresh.ID {
		t.Fatalf("Unsettled(%v) = %+v, want entries %d and %d", olderThan, old, e.ID, fresh.ID)
	}
	all, err := j.Unsettled(ctx, 0)
	if err != nil {
		t.Fatalf("Unsettled(0): %v", err)
	}
	if len(all) != 3 || all[2].ID != late.ID {
		t.Fatalf("Unsettled(0) = %+v, want 3 entries ending with %d", all, late.ID)
	}

	result := []byte(`{"pushed":"abc"}`)
	if err := j.Reconciled(ctx, e.ID, Succeeded, result, "", ""); err != nil {
		t.Fatalf("Reconciled: %v", err)
	}
	wantErr(t, j.Reconciled(ctx, e.ID, Failed, nil, "conflict", "x"), backends.Conflict, ErrSettled)
	wantErr(t, j.Settle(ctx, e.ID, 4, Failed, nil, "conflict", "x"), backends.Conflict, ErrFenced)

	got := mustStart(t, j, b, Replay)
	if got.State != Succeeded || !got.Reconciled || !jsonEqual(t, got.Result, result) || got.SettledAt.IsZero() {
		t.Fatalf("replay after reconciliation = %+v", got)
	}
	left, err := j.Unsettled(ctx, 0)
	if err != nil {
		t.Fatalf("Unsettled: %v", err)
	}
	if len(left) != 2 || left[0].ID != fresh.ID || left[1].ID != late.ID {
		t.Fatalf("Unsettled after reconciliation = %+v", left)
	}
}

func TestReconciledUnknown(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
	e := mustStart(t, j, b, Proceed)
	if err := j.Reconciled(testCtx(t), e.ID, Unknown, nil, "unavailable", "remote unreachable"); err != nil {
		t.Fatalf("Reconciled: %v", err)
	}
	got := mustStart(t, j, b, Replay)
	if got.State != Unknown || got.ErrorCategory != "unavailable" || got.ErrorMessage != "remote unreachable" || !got.Reconciled {
		t.Fatalf("entry = %+v", got)
	}
}

func TestSettleValidates(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	e := mustStart(t, j, begin(t, Key{"p", "w", "k"}, "push", nil, 1), Proceed)
	ctx := testCtx(t)
	wantErr(t, j.Settle(ctx, e.ID, 1, Unknown, nil, "", ""), backends.Internal, nil)
	wantErr(t, j.Settle(ctx, e.ID, 1, Started, nil, "", ""), backends.Internal, nil)
	wantErr(t, j.Settle(ctx, e.ID, 1, Succeeded, []byte("{"), "", ""), backends.Internal, nil)
	wantErr(t, j.Reconciled(ctx, e.ID, Started, nil, "", ""), backends.Internal, nil)
	if got, err := j.Get(ctx, e.ID); err != nil || got.State != Started {
		t.Fatalf("Get = %+v, %v; want still started", got, err)
	}
	_, err := j.Get(ctx, e.ID+1000)
	wantErr(t, err, backends.NotFound, ErrNotFound)
}
