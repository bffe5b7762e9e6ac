package journal

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

type pushReq struct {
	Branch string `json:"branch"`
	Force  bool   `json:"force"`
}

func TestStartSettleReplay(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	k := Key{Project: "proj", Workspace: "ws", IdempotencyKey: "key-1"}
	b := begin(t, k, "push", pushReq{Branch: "main"}, 7)
	b.Prepared = []byte(`{"ref":"refs/heads/main","target":"abc"}`)
	before := time.Now().Add(-time.Second)

	e := mustStart(t, j, b, Proceed)
	if e.ID <= 0 || e.Key != k || e.Op != "push" || !bytes.Equal(e.Fingerprint, b.Fingerprint) ||
		e.State != Started || e.Fence != 7 || e.Attempts != 1 || e.Result != nil ||
		e.Reconciled || !e.SettledAt.IsZero() || e.StartedAt.Before(before) {
		t.Fatalf("started entry = %+v", e)
	}
	if !jsonEqual(t, e.Prepared, b.Prepared) {
		t.Fatalf("prepared = %s, want %s", e.Prepared, b.Prepared)
	}

	result := []byte(`{"pushed":"abc","ref":"refs/heads/main"}`)
	if err := j.Settle(testCtx(t), e.ID, 7, Succeeded, result, "", ""); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	r := mustStart(t, j, b, Replay)
	if r.ID != e.ID || r.State != Succeeded || r.Fence != 7 || r.Attempts != 1 ||
		r.SettledAt.Before(r.StartedAt) || r.ErrorCategory != "" || r.ErrorMessage != "" {
		t.Fatalf("replayed entry = %+v", r)
	}
	if !jsonEqual(t, r.Result, result) {
		t.Fatalf("replayed result = %s, want %s", r.Result, result)
	}
	if n := count(t, j, `SELECT count(*) FROM op_journal`); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestReplayOfFailure(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	b := begin(t, Key{"p", "w", "k"}, "commit", map[string]string{"message": "x"}, 1)
	e := mustStart(t, j, b, Proceed)
	if err := j.Settle(testCtx(t), e.ID, 1, Failed, nil, "conflict", "nothing to commit"); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	r := mustStart(t, j, b, Replay)
	if r.State != Failed || r.ErrorCategory != "conflict" || r.ErrorMessage != "nothing to commit" || r.Result != nil {
		t.Fatalf("replayed entry = %+v", r)
	}
}

func TestSameKeyDifferentRequestIsInvalid(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	k := Key{"p", "w", "k"}
	mustStart(t, j, begin(t, k, "push", pushReq{Branch: "main"}, 1), Proceed)
	for _, b := range []Begin{
		begin(t, k, "push", pushReq{Branch: "dev"}, 1),
		begin(t, k, "branch", pushReq{Branch: "main"}, 1),
	} {
		_, _, err := j.Start(testCtx(t), b)
		wantErr(t, err, backends.InvalidArgument, ErrKeyReused)
		if !strings.Contains(backends.MessageOf(err), "already used for another request") {
			t.Fatalf("message = %q", backends.MessageOf(err))
		}
	}
	if n := count(t, j, `SELECT count(*) FROM op_journal`); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestKeysAreScopedByProjectAndWorkspace(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	ids := map[int64]bool{}
	for _, k := range []Key{{"p1", "w1", "k"}, {"p1", "w2", "k"}, {"p2", "w1", "k"}} {
		e := mustStart(t, j, begin(t, k, "push", pushReq{Branch: "main"}, 1), Proceed)
		ids[e.ID] = true
		// A different request under the same key elsewhere is independent too.
		other := Key{k.Project, k.Workspace + "-x", "k"}
		mustStart(t, j, begin(t, other, "pull", nil, 1), Proceed)
	}
	if len(ids) != 3 {
		t.Fatalf("ids = %v, want 3 distinct", ids)
	}
	if n := count(t, j, `SELECT count(*) FROM op_journal`); n != 6 {
		t.Fatalf("%d rows, want 6", n)
	}
}

func TestStartValidates(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
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
		"no op":        {func(b *Begin) { b.Op = "" }, backends.Internal},
		"no print":     {func(b *Begin) { b.Fingerprint = nil }, backends.Internal},
		"bad prepared": {func(b *Begin) { b.Prepared = []byte("{") }, backends.Internal},
	}
	for name, c := range cases {
		b := good
		c.mutate(&b)
		_, _, err := j.Start(testCtx(t), b)
		if backends.CategoryOf(err) != c.want {
			t.Errorf("%s: err = %v, want category %s", name, err, c.want)
		}
	}
	if n := count(t, j, `SELECT count(*) FROM op_journal`); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}
	mustStart(t, j, begin(t, Key{"p", "w", strings.Repeat("k", MaxKeyLen)}, "push", nil, 1), Proceed)
}

// startAll runs n concurrent calls of start, released together.
func startAll(n int, start func() (Entry, Outcome, error)) ([]Entry, []Outcome, []error) {
	es, outs, errs := make([]Entry, n), make([]Outcome, n), make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			es[i], outs[i], errs[i] = start()
		})
	}
	close(gate)
	wg.Wait()
	return es, outs, errs
}

func TestConcurrentStartOneProceeds(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	b := begin(t, Key{"p", "w", "race"}, "push", pushReq{Branch: "main"}, 1)
	_, outcomes, errs := startAll(20, func() (Entry, Outcome, error) { return j.Start(testCtx(t), b) })
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
	if n := count(t, j, `SELECT count(*) FROM op_journal`); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestConcurrentStartWaitReplays(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{PollInterval: 10 * time.Millisecond})
	b := begin(t, Key{"p", "w", "race"}, "push", pushReq{Branch: "main"}, 3)
	result := []byte(`{"pushed":"abc"}`)
	es, outcomes, errs := startAll(20, func() (Entry, Outcome, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e, o, err := j.StartWait(ctx, b)
		if err == nil && o == Proceed {
			time.Sleep(200 * time.Millisecond) // the operation runs
			err = j.Settle(ctx, e.ID, 3, Succeeded, result, "", "")
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
}

func TestStartWaitGivesUpWithConflict(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{PollInterval: 10 * time.Millisecond})
	b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
	mustStart(t, j, b, Proceed)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, _, err := j.StartWait(ctx, b)
	wantErr(t, err, backends.Conflict, ErrInFlight)
	if ctx.Err() == nil {
		t.Fatal("StartWait gave up before its context ended")
	}
}

// TestStartWaitsForUncommittedInsert pins the insert/read race: a Start that
// collides with a row another transaction has inserted but not committed
// waits for it, then sees it (commit) or records its own (rollback).
func TestStartWaitsForUncommittedInsert(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{true, false} {
		j := newJournal(t, Options{})
		b := begin(t, Key{"p", "w", "k"}, "push", nil, 1)
		tx, err := j.pool.Begin(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(testCtx(t), insertSQL, b.Project, b.Workspace, b.IdempotencyKey, b.Op, b.Fingerprint, b.Fence, nil); err != nil {
			t.Fatal(err)
		}
		type res struct {
			o   Outcome
			err error
		}
		done := make(chan res, 1)
		go func() {
			_, o, err := j.Start(testCtx(t), b)
			done <- res{o, err}
		}()
		select {
		case r := <-done:
			t.Fatalf("Start returned %v, %v before the other insert committed", r.o, r.err)
		case <-time.After(150 * time.Millisecond):
		}
		end := tx.Rollback
		if commit {
			end = tx.Commit
		}
		if err := end(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if commit {
			wantErr(t, r.err, backends.Conflict, ErrInFlight)
		} else if r.err != nil || r.o != Proceed {
			t.Fatalf("after rollback Start = %v, %v; want Proceed", r.o, r.err)
		}
		if n := count(t, j, `SELECT count(*) FROM op_journal`); n != 1 {
			t.Fatalf("commit=%v: %d rows, want 1", commit, n)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]string{Proceed: "proceed", Replay: "replay", Reconcile: "reconcile", 0: "Outcome(0)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}
