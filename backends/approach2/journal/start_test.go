package journal

import (
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
)

type pushReq struct {
	Branch string `json:"branch"`
	Force  bool   `json:"force"`
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
