package journal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/testkit"
)

// The tests of this file run against every Store implementation: the
// promises of Store are the same whichever one a process uses.

// storeOpts are the settings a test needs of a Store.
type storeOpts struct {
	InFlightTimeout, PollInterval time.Duration
}

// storeImpl builds one implementation for a test and counts its entries.
type storeImpl struct {
	name  string
	open  func(t *testing.T, o storeOpts) Store
	count func(t *testing.T, s Store) int
}

var storeImpls = []storeImpl{
	{
		name: "postgres",
		open: func(t *testing.T, o storeOpts) Store {
			return newJournal(t, Options{InFlightTimeout: o.InFlightTimeout, PollInterval: o.PollInterval})
		},
		count: func(t *testing.T, s Store) int { return count(t, s.(*Journal), `SELECT count(*) FROM op_journal`) },
	},
	{
		name: "dir",
		open: func(t *testing.T, o storeOpts) Store {
			return newDir(t, t.TempDir(), DirOptions{InFlightTimeout: o.InFlightTimeout, PollInterval: o.PollInterval})
		},
		count: func(t *testing.T, s Store) int {
			t.Helper()
			files, err := os.ReadDir(filepath.Join(s.(*Dir).dir, dirEntries))
			if err != nil {
				t.Fatal(err)
			}
			return len(files)
		},
	},
}

func newDir(t *testing.T, dir string, opts DirOptions) *Dir {
	t.Helper()
	d, err := OpenDir(dir, opts)
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	return d
}

// forEachStore runs test, in parallel, against every implementation.
func forEachStore(t *testing.T, test func(t *testing.T, impl storeImpl)) {
	t.Parallel()
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			test(t, impl)
		})
	}
}

// startStore starts b on s and requires outcome want.
func startStore(t *testing.T, s Store, b Begin, want Outcome) Entry {
	t.Helper()
	e, o, err := s.Start(testCtx(t), b)
	if err != nil {
		t.Fatalf("Start(%+v): %v", b.Key, err)
	}
	if o != want {
		t.Fatalf("Start(%+v) outcome = %v, want %v", b.Key, o, want)
	}
	return e
}

// waitStale waits until Start of b says Reconcile.
func waitStale(t *testing.T, s Store, b Begin) Entry {
	t.Helper()
	var e Entry
	testkit.Eventually(t, "the entry to go stale", func() bool {
		got, o, err := s.Start(testCtx(t), b)
		if err != nil && backends.CategoryOf(err) != backends.Conflict {
			t.Fatalf("Start: %v", err)
		}
		e = got
		return err == nil && o == Reconcile
	})
	return e
}

func TestStoreStartSettleReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		k := Key{Project: "proj", Workspace: "ws", IdempotencyKey: "key-1"}
		b := begin(t, k, "push", pushReq{Branch: "main"}, 7)
		b.Prepared = []byte(`{"ref":"refs/heads/main","target":"abc"}`)
		before := time.Now().Add(-time.Second)
		e := startStore(t, s, b, Proceed)
		if e.ID <= 0 || e.Key != k || e.Op != "push" || !bytes.Equal(e.Fingerprint, b.Fingerprint) ||
			e.State != Started || e.Fence != 7 || e.Attempts != 1 || e.Result != nil ||
			e.Reconciled || !e.SettledAt.IsZero() || e.StartedAt.Before(before) {
			t.Fatalf("started entry = %+v", e)
		}
		if !jsonEqual(t, e.Prepared, b.Prepared) {
			t.Fatalf("prepared = %s, want %s", e.Prepared, b.Prepared)
		}
		result := []byte(`{"pushed":"abc","ref":"refs/heads/main"}`)
		if err := s.Settle(testCtx(t), e.ID, 7, Succeeded, result, "", ""); err != nil {
			t.Fatalf("Settle: %v", err)
		}
		r := startStore(t, s, b, Replay)
		if r.ID != e.ID || r.State != Succeeded || r.Fence != 7 || r.Attempts != 1 ||
			r.SettledAt.Before(r.StartedAt) || r.ErrorCategory != "" || r.ErrorMessage != "" {
			t.Fatalf("replayed entry = %+v", r)
		}
		if !jsonEqual(t, r.Result, result) {
			t.Fatalf("replayed result = %s, want %s", r.Result, result)
		}
		got, err := s.Get(testCtx(t), e.ID)
		if err != nil || got.State != Succeeded || got.ID != e.ID || got.Key != k {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if n := impl.count(t, s); n != 1 {
			t.Fatalf("%d entries, want 1", n)
		}
	})
}

func TestStoreReplayOfFailure(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		b := begin(t, Key{"p", "w", "k"}, "commit", map[string]string{"message": "x"}, 1)
		e := startStore(t, s, b, Proceed)
		if err := s.Settle(testCtx(t), e.ID, 1, Failed, nil, "conflict", "nothing to commit"); err != nil {
			t.Fatalf("Settle: %v", err)
		}
		r := startStore(t, s, b, Replay)
		if r.State != Failed || r.ErrorCategory != "conflict" || r.ErrorMessage != "nothing to commit" || r.Result != nil {
			t.Fatalf("replayed entry = %+v", r)
		}
	})
}

func TestStoreSameKeyDifferentRequestIsInvalid(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		k := Key{"p", "w", "k"}
		e := startStore(t, s, begin(t, k, "push", pushReq{Branch: "main"}, 1), Proceed)
		for i, b := range []Begin{
			begin(t, k, "push", pushReq{Branch: "dev"}, 1),
			begin(t, k, "branch", pushReq{Branch: "main"}, 1),
		} {
			_, _, err := s.Start(testCtx(t), b)
			wantErr(t, err, backends.InvalidArgument, ErrKeyReused)
			if !strings.Contains(backends.MessageOf(err), "already used for another request") {
				t.Fatalf("message = %q", backends.MessageOf(err))
			}
			if i == 0 { // also once the first one is settled
				if err := s.Settle(testCtx(t), e.ID, 1, Succeeded, nil, "", ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n := impl.count(t, s); n != 1 {
			t.Fatalf("%d entries, want 1", n)
		}
	})
}

func TestStoreKeysAreScopedByProjectAndWorkspace(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		ids := map[int64]bool{}
		for _, k := range []Key{{"p1", "w1", "k"}, {"p1", "w2", "k"}, {"p2", "w1", "k"}, {"p1", "w1k", ""}} {
			if k.IdempotencyKey == "" {
				// Keys that would collide if the parts were joined naively.
				k = Key{"p1", "w", "1k"}
			}
			e := startStore(t, s, begin(t, k, "push", pushReq{Branch: "main"}, 1), Proceed)
			ids[e.ID] = true
			other := Key{k.Project, k.Workspace + "-x", k.IdempotencyKey}
			startStore(t, s, begin(t, other, "pull", nil, 1), Proceed)
		}
		if len(ids) != 4 {
			t.Fatalf("ids = %v, want 4 distinct", ids)
		}
		if n := impl.count(t, s); n != 8 {
			t.Fatalf("%d entries, want 8", n)
		}
	})
}

func TestStoreStartValidates(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		good := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
		cases := map[string]struct {
			mutate func(*Begin)
			want   backends.Category
		}{
			"empty key":    {func(b *Begin) { b.IdempotencyKey = "" }, backends.InvalidArgument},
			"long key":     {func(b *Begin) { b.IdempotencyKey = strings.Repeat("k", MaxKeyLen+1) }, backends.InvalidArgument},
			"NUL in key":   {func(b *Begin) { b.IdempotencyKey = "a\x00b" }, backends.InvalidArgument},
			"bad UTF-8":    {func(b *Begin) { b.IdempotencyKey = "\xff" }, backends.InvalidArgument},
			"no project":   {func(b *Begin) { b.Project = "" }, backends.InvalidArgument},
			"no workspace": {func(b *Begin) { b.Workspace = "" }, backends.InvalidArgument},
			"no op":        {func(b *Begin) { b.Op = "" }, backends.Internal},
			"no print":     {func(b *Begin) { b.Fingerprint = nil }, backends.Internal},
			"bad prepared": {func(b *Begin) { b.Prepared = []byte("{") }, backends.Internal},
		}
		for name, c := range cases {
			b := good
			c.mutate(&b)
			_, _, err := s.Start(testCtx(t), b)
			if backends.CategoryOf(err) != c.want {
				t.Errorf("%s: err = %v, want category %s", name, err, c.want)
			}
		}
		if n := impl.count(t, s); n != 0 {
			t.Fatalf("%d entries, want 0", n)
		}
		startStore(t, s, begin(t, Key{"p", "w", strings.Repeat("k", MaxKeyLen)}, "push", nil, 1), Proceed)
	})
}

func TestStoreConcurrentStartOneProceeds(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		b := begin(t, Key{"p", "w", "race"}, "push", pushReq{Branch: "main"}, 1)
		_, outcomes, errs := startAll(20, func() (Entry, Outcome, error) { return s.Start(testCtx(t), b) })
		proceeds := 0
		for i, err := range errs {
			if err != nil {
				wantErr(t, err, backends.Conflict, ErrInFlight)
				continue
			}
			if outcomes[i] != Proceed {
				t.Fatalf("outcome %v without error", outcomes[i])
			}
			proceeds++
		}
		if proceeds != 1 {
			t.Fatalf("%d Proceed outcomes, want exactly 1", proceeds)
		}
		if n := impl.count(t, s); n != 1 {
			t.Fatalf("%d entries, want 1", n)
		}
	})
}

func TestStoreConcurrentStartWaitReplays(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{PollInterval: 10 * time.Millisecond})
		b := begin(t, Key{"p", "w", "race"}, "push", pushReq{Branch: "main"}, 3)
		result := []byte(`{"pushed":"abc"}`)
		es, outcomes, errs := startAll(20, func() (Entry, Outcome, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, o, err := s.StartWait(ctx, b)
			if err == nil && o == Proceed {
				time.Sleep(100 * time.Millisecond) // the operation runs
				err = s.Settle(ctx, e.ID, 3, Succeeded, result, "", "")
			}
			return e, o, err
		})
		proceeds := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("StartWait #%d: %v", i, err)
			}
			switch outcomes[i] {
			case Proceed:
				proceeds++
			case Replay:
				if es[i].State != Succeeded || !jsonEqual(t, es[i].Result, result) {
					t.Fatalf("replay #%d = %+v", i, es[i])
				}
			default:
				t.Fatalf("outcome #%d = %v", i, outcomes[i])
			}
		}
		if proceeds != 1 {
			t.Fatalf("%d Proceed outcomes, want exactly 1", proceeds)
		}
	})
}

func TestStoreStartWaitGivesUpWithConflict(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{PollInterval: 10 * time.Millisecond})
		b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
		startStore(t, s, b, Proceed)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, _, err := s.StartWait(ctx, b)
		wantErr(t, err, backends.Conflict, ErrInFlight)
		if ctx.Err() == nil {
			t.Fatal("StartWait gave up before its context ended")
		}
	})
}

func TestStoreFencing(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		e := startStore(t, s, begin(t, Key{"p", "w", "k"}, "push", nil, 5), Proceed)
		ctx := testCtx(t)
		if err := s.Takeover(ctx, e.ID, 7); err != nil {
			t.Fatalf("Takeover(7): %v", err)
		}
		wantErr(t, s.Takeover(ctx, e.ID, 7), backends.Conflict, ErrFenced)
		wantErr(t, s.Takeover(ctx, e.ID, 6), backends.Conflict, ErrFenced)
		wantErr(t, s.Settle(ctx, e.ID, 5, Succeeded, []byte(`{"stale":true}`), "", ""), backends.Conflict, ErrFenced)
		wantErr(t, s.SetPrepared(ctx, e.ID, 5, []byte(`{"stale":true}`)), backends.Conflict, ErrFenced)
		if err := s.SetPrepared(ctx, e.ID, 7, []byte(`{"plan":1}`)); err != nil {
			t.Fatalf("SetPrepared(7): %v", err)
		}
		got, err := s.Get(ctx, e.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.State != Started || got.Fence != 7 || got.Attempts != 2 || got.Result != nil || !got.SettledAt.IsZero() ||
			!jsonEqual(t, got.Prepared, []byte(`{"plan":1}`)) {
			t.Fatalf("entry after a stale settle = %+v, want started, fence 7, attempts 2, no result, the new plan", got)
		}
		if err := s.Settle(ctx, e.ID, 7, Failed, nil, "conflict", "lease failed"); err != nil {
			t.Fatalf("Settle(7): %v", err)
		}
		wantErr(t, s.Settle(ctx, e.ID, 7, Succeeded, nil, "", ""), backends.Conflict, ErrFenced)
		wantErr(t, s.Takeover(ctx, e.ID, 9), backends.Conflict, ErrFenced)
		wantErr(t, s.SetPrepared(ctx, e.ID, 7, nil), backends.Conflict, ErrFenced)
		wantErr(t, s.Settle(ctx, e.ID+1000, 7, Succeeded, nil, "", ""), backends.Conflict, ErrFenced)
		got, err = s.Get(ctx, e.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.State != Failed || got.Fence != 7 || got.ErrorCategory != "conflict" || got.ErrorMessage != "lease failed" || got.Reconciled {
			t.Fatalf("settled entry = %+v", got)
		}
	})
}

func TestStoreTakeoverRefreshesClaim(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{InFlightTimeout: time.Second})
		b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
		e := startStore(t, s, b, Proceed)
		stale := waitStale(t, s, b)
		if stale.ID != e.ID {
			t.Fatalf("stale entry %+v, want id %d", stale, e.ID)
		}
		if err := s.Takeover(testCtx(t), e.ID, 2); err != nil {
			t.Fatalf("Takeover: %v", err)
		}
		got, err := s.Get(testCtx(t), e.ID)
		if err != nil || !got.UpdatedAt.After(stale.UpdatedAt) || got.Attempts != 2 || got.Fence != 2 {
			t.Fatalf("after Takeover: %+v, %v; want a fresh claim, attempt 2, fence 2", got, err)
		}
		// The retry is running again: a duplicate waits instead of reconciling.
		_, _, err = s.Start(testCtx(t), b)
		wantErr(t, err, backends.Conflict, ErrInFlight)
	})
}

func TestStoreStaleEntryIsReconciled(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{InFlightTimeout: 200 * time.Millisecond})
		ctx := testCtx(t)
		b := begin(t, Key{"p", "w", "stale"}, "push", pushReq{Branch: "main"}, 4)
		b.Prepared = []byte(`{"target":"abc","old":"def"}`)
		e := startStore(t, s, b, Proceed)
		fresh := startStore(t, s, begin(t, Key{"p", "w", "fresh"}, "push", nil, 1), Proceed)
		r := waitStale(t, s, b)
		if r.ID != e.ID || r.State != Started || r.Fence != 4 || !jsonEqual(t, r.Prepared, b.Prepared) {
			t.Fatalf("reconcile entry = %+v", r)
		}
		// Wait until the first two are a second old, then start a third:
		// Unsettled with an age between theirs and its lists only them.
		testkit.Eventually(t, "entries a second old", func() bool {
			old, err := s.Unsettled(ctx, time.Second)
			return err == nil && len(old) == 2
		})
		beforeLate := time.Now()
		late := startStore(t, s, begin(t, Key{"p", "w", "late"}, "push", nil, 1), Proceed)
		old, err := s.Unsettled(ctx, time.Since(beforeLate)+500*time.Millisecond)
		if err != nil {
			t.Fatalf("Unsettled: %v", err)
		}
		if len(old) != 2 || old[0].ID != e.ID || old[1].ID != fresh.ID {
			t.Fatalf("Unsettled(older than the late one) = %+v, want entries %d and %d", old, e.ID, fresh.ID)
		}
		all, err := s.Unsettled(ctx, 0)
		if err != nil {
			t.Fatalf("Unsettled(0): %v", err)
		}
		if len(all) != 3 || all[2].ID != late.ID {
			t.Fatalf("Unsettled(0) = %+v, want 3 entries ending with %d", all, late.ID)
		}
		if none, err := s.Unsettled(ctx, time.Hour); err != nil || len(none) != 0 {
			t.Fatalf("Unsettled(1h) = %+v, %v; want none", none, err)
		}
		result := []byte(`{"pushed":"abc"}`)
		if err := s.Reconciled(ctx, e.ID, Succeeded, result, "", ""); err != nil {
			t.Fatalf("Reconciled: %v", err)
		}
		wantErr(t, s.Reconciled(ctx, e.ID, Failed, nil, "conflict", "x"), backends.Conflict, ErrSettled)
		wantErr(t, s.Settle(ctx, e.ID, 4, Failed, nil, "conflict", "x"), backends.Conflict, ErrFenced)
		got := startStore(t, s, b, Replay)
		if got.State != Succeeded || !got.Reconciled || !jsonEqual(t, got.Result, result) || got.SettledAt.IsZero() {
			t.Fatalf("replay after reconciliation = %+v", got)
		}
		left, err := s.Unsettled(ctx, 0)
		if err != nil {
			t.Fatalf("Unsettled: %v", err)
		}
		if len(left) != 2 || left[0].ID != fresh.ID || left[1].ID != late.ID {
			t.Fatalf("Unsettled after reconciliation = %+v", left)
		}
	})
}

func TestStoreReconciledUnknown(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
		e := startStore(t, s, b, Proceed)
		if err := s.Reconciled(testCtx(t), e.ID, Unknown, nil, "unavailable", "remote unreachable"); err != nil {
			t.Fatalf("Reconciled: %v", err)
		}
		got := startStore(t, s, b, Replay)
		if got.State != Unknown || got.ErrorCategory != "unavailable" || got.ErrorMessage != "remote unreachable" || !got.Reconciled {
			t.Fatalf("entry = %+v", got)
		}
		wantErr(t, s.Reconciled(testCtx(t), e.ID+1000, Unknown, nil, "", ""), backends.Conflict, ErrSettled)
	})
}

func TestStoreSettleValidates(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		e := startStore(t, s, begin(t, Key{"p", "w", "k"}, "push", nil, 1), Proceed)
		ctx := testCtx(t)
		wantErr(t, s.Settle(ctx, e.ID, 1, Unknown, nil, "", ""), backends.Internal, nil)
		wantErr(t, s.Settle(ctx, e.ID, 1, Started, nil, "", ""), backends.Internal, nil)
		wantErr(t, s.Settle(ctx, e.ID, 1, Succeeded, []byte("{"), "", ""), backends.Internal, nil)
		wantErr(t, s.Reconciled(ctx, e.ID, Started, nil, "", ""), backends.Internal, nil)
		wantErr(t, s.SetPrepared(ctx, e.ID, 1, []byte("{")), backends.Internal, nil)
		if got, err := s.Get(ctx, e.ID); err != nil || got.State != Started {
			t.Fatalf("Get = %+v, %v; want still started", got, err)
		}
		_, err := s.Get(ctx, e.ID+1000)
		wantErr(t, err, backends.NotFound, ErrNotFound)
	})
}

func TestStoreCallerDeadlineIsTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, impl storeImpl) {
		s := impl.open(t, storeOpts{})
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, _, err := s.Start(ctx, begin(t, Key{"p", "w", "k"}, "push", nil, 1))
		wantErr(t, err, backends.Timeout, context.DeadlineExceeded)
	})
}
