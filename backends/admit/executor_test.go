package admit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// fakeEngine answers every call with an empty result of its operation,
// and predicts nothing; it counts what reached it.
type fakeEngine struct {
	calls, predictions atomic.Int64
	block              chan struct{} // if set, calls wait for it to close
}

func (f *fakeEngine) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	res := backends.NewResult(req.Op())
	res.GetServed().Wait = 1 // the engine's own queueing (its lock)
	return res, nil
}

func (f *fakeEngine) Predict(context.Context, backends.Request, backends.Result) (*backends.Prediction, error) {
	f.predictions.Add(1)
	return &backends.Prediction{}, nil
}

// TestExecutorAdmitsBeforeTheEngine: a refused call never reaches the
// engine and says which operation it was, still marked not started; an
// admitted call's wait for its slot is added to its Served.Wait.
func TestExecutorAdmitsBeforeTheEngine(t *testing.T) {
	engine := &fakeEngine{block: make(chan struct{})}
	l := New(Options{Slots: 1, MaxQueue: 1})
	ex := Executor(engine, l)
	write := func() (backends.Result, error) {
		req := &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "w"}, Path: "f", Content: "x"}
		return ex.Execute(t.Context(), req)
	}
	first := make(chan error, 1)
	go func() { _, err := write(); first <- err }()
	queuedRes := make(chan backends.Result, 1)
	go func() { res, _ := write(); queuedRes <- res }()
	queued(t, l, 1)
	_, err := write()
	wantRefused(t, err, backends.Unavailable, "write_file: unavailable: this gitgate process is at capacity")
	close(engine.block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	res := <-queuedRes
	if res == nil || res.GetServed().Wait <= 1 {
		t.Errorf("the queued call's Served.Wait does not count its wait for a slot: %+v", res)
	}
	if n := engine.calls.Load(); n != 2 {
		t.Errorf("the engine saw %d calls, want 2 (the refused one must not reach it)", n)
	}
}

// TestExecutorKeepsPredicting: the decorated executor still predicts when
// its engine does, as shadow work: refused at once while every slot is
// busy. A nil Limiter leaves the engine as it is.
func TestExecutorKeepsPredicting(t *testing.T) {
	engine := &fakeEngine{}
	l := New(Options{Slots: 1})
	p, ok := Executor(engine, l).(backends.Predictor)
	if !ok {
		t.Fatal("Executor hid its engine's Predictor")
	}
	req := &backends.CommitRequest{Scope: backends.Scope{Workspace: "w"}, Message: "m"}
	if _, err := p.Predict(t.Context(), req, &backends.CommitResult{}); err != nil {
		t.Fatal(err)
	}
	hold := take(t, l)
	_, err := p.Predict(t.Context(), req, &backends.CommitResult{})
	wantRefused(t, err, backends.Unavailable, "shadow work does not wait")
	hold()
	if n := engine.predictions.Load(); n != 1 {
		t.Errorf("the engine made %d predictions, want 1", n)
	}
	if _, ok := Executor(struct{ backends.Executor }{engine}, l).(backends.Predictor); ok {
		t.Error("Executor predicts for an engine that does not")
	}
	if Executor(engine, nil) != backends.Executor(engine) || Predictor(engine, nil) != backends.Predictor(engine) {
		t.Error("a nil Limiter should leave the engine undecorated")
	}
	if _, err := Predictor(engine, l).Predict(t.Context(), req, &backends.CommitResult{}); err != nil || errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("Predictor with a slot free: %v", err)
	}
}
