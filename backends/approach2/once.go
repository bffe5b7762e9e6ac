package approach2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/backends/lock"
)

// OnceConfig configures Once.
type OnceConfig struct {
	// Engine runs the operations. Its Locker must be lock.Reentrant over
	// Locker, so that it reuses the lease Once holds. Required.
	Engine backends.Executor
	// Locker grants the workspace leases whose fences the journal checks.
	// Required.
	Locker lock.Locker
	// Journal records every write before it runs. Required.
	Journal journal.Store
	// LockKey names the workspace lock of a request (the same key the
	// engine and the gateway use). Required.
	LockKey func(backends.Request) string
	// WaitForDuplicate bounds how long a retry waits for an identical
	// operation still running. If zero, 30 s.
	WaitForDuplicate time.Duration
	Logger           *slog.Logger // if nil, slog.Default()
}

// Once makes writes exactly-once: each is recorded in the journal under the
// workspace lock before it runs and settled after; a retry with the same
// idempotency key gets the recorded result, a different request under a
// used key is refused, and a duplicate still running is waited for.
//
// A write that has started runs to completion even when the caller gives
// up (git's own time limits still bound it): its result is settled in the
// journal, and the caller's retry replays it. Stopping it half-way would
// leave an outcome nobody knows. Losing the lock does stop it.
type Once struct {
	cfg OnceConfig
}

var _ backends.Executor = (*Once)(nil)

// NewOnce returns a Once.
func NewOnce(cfg OnceConfig) (*Once, error) {
	if cfg.Engine == nil || cfg.Locker == nil || cfg.Journal == nil || cfg.LockKey == nil {
		return nil, errors.New("approach2: OnceConfig needs Engine, Locker, Journal and LockKey")
	}
	if cfg.WaitForDuplicate <= 0 {
		cfg.WaitForDuplicate = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Once{cfg: cfg}, nil
}

// Execute runs reads directly and writes exactly once.
func (o *Once) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	if req.Op().IsRead() || req.Op() == backends.OpListWorkspaces {
		return o.cfg.Engine.Execute(ctx, req)
	}
	if p := req.GetScope().Principal; p.Project == "" || p.Agent == "" {
		return nil, backends.Errorf(backends.Unauthenticated, "no authenticated agent")
	}
	begin, err := o.begin(req)
	if err != nil {
		return nil, err
	}
	key := o.cfg.LockKey(req)
	lease, err := o.cfg.Locker.Acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	begin.Fence = lease.Fence()
	waitCtx, cancel := context.WithTimeout(ctx, o.cfg.WaitForDuplicate)
	entry, outcome, err := o.cfg.Journal.StartWait(waitCtx, begin)
	cancel()
	if err != nil {
		return nil, err
	}
	runCtx, stop := detached(ctx, key, lease)
	defer stop()
	switch outcome {
	case journal.Replay:
		return replay(req.Op(), entry)
	case journal.Reconcile:
		return o.reconcile(runCtx, req, entry, lease)
	}
	return o.run(runCtx, req, entry, lease)
}

// begin describes the request for the journal. Without a key from the
// caller, a random one is used: the write is journaled (and fenced) but a
// retry cannot be recognised.
func (o *Once) begin(req backends.Request) (journal.Begin, error) {
	s := req.GetScope()
	idem := s.IdempotencyKey
	if idem == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		idem = "auto-" + hex.EncodeToString(b[:])
	}
	fp, err := journal.Fingerprint(string(req.Op()), struct {
		Principal backends.Principal
		Request   backends.Request
	}{s.Principal, req})
	if err != nil {
		return journal.Begin{}, err
	}
	return journal.Begin{Key: journal.Key{Project: s.Principal.Project, Workspace: s.Workspace, IdempotencyKey: idem},
		Op: string(req.Op()), Fingerprint: fp}, nil
}

// detached returns a context for running a started write: free of the
// caller's deadline and cancellation, carrying the held lease, and
// cancelled when the lease is lost.
func detached(ctx context.Context, key string, lease lock.Lease) (context.Context, func()) {
	run, cancel := context.WithCancel(lock.WithLease(context.WithoutCancel(ctx), key, lease))
	if lost := lease.Lost(); lost != nil {
		stopWatch := make(chan struct{})
		go func() {
			select {
			case <-lost:
				cancel()
			case <-stopWatch:
			}
		}()
		return run, func() { close(stopWatch); cancel() }
	}
	return run, cancel
}

// run records the plan recovery needs, then runs the write and settles it.
// A write whose plan cannot be made never started: it settles as failed.
func (o *Once) run(ctx context.Context, req backends.Request, entry journal.Entry, lease lock.Lease) (backends.Result, error) {
	prepared, err := o.prepare(ctx, req, o.cfg.LockKey(req))
	if err == nil {
		err = o.cfg.Journal.SetPrepared(ctx, entry.ID, lease.Fence(), prepared)
	}
	if err != nil {
		o.settle(ctx, entry, lease.Fence(), nil, err)
		return nil, err
	}
	res, err := o.cfg.Engine.Execute(ctx, req)
	o.settle(ctx, entry, lease.Fence(), res, err)
	return res, err
}

// settle records the outcome. A fenced settle means the lock was taken
// over while the write ran: the write happened, but loudly.
func (o *Once) settle(ctx context.Context, entry journal.Entry, fence int64, res backends.Result, opErr error) {
	state, result, cat, msg := journal.Succeeded, []byte(nil), "", ""
	if opErr != nil {
		state, cat, msg = journal.Failed, string(backends.CategoryOf(opErr)), backends.MessageOf(opErr)
	} else if raw, err := json.Marshal(res); err == nil {
		result = raw
	}
	if err := o.cfg.Journal.Settle(context.WithoutCancel(ctx), entry.ID, fence, state, result, cat, msg); err != nil {
		o.cfg.Logger.Error("journal entry not settled", "entry", entry.ID, "op", entry.Op, "fence", fence, "err", err)
	}
}

// replay returns what the first attempt returned.
func replay(op backends.Op, e journal.Entry) (backends.Result, error) {
	switch e.State {
	case journal.Succeeded:
		res := backends.NewResult(op)
		if err := json.Unmarshal(e.Result, res); err != nil {
			return nil, backends.Errorf(backends.Internal, "recorded result of %s cannot be read: %w", op, err)
		}
		return res, nil
	case journal.Failed:
		return nil, &backends.Error{Category: backends.Category(e.ErrorCategory), Message: e.ErrorMessage}
	}
	return nil, backends.Errorf(backends.Conflict, "the earlier %s with this idempotency key ended with an unknown outcome; check the workspace (status, log) before retrying with a new key", op)
}

// reconcile handles an identical operation left started by a holder that
// died. Operations that are idempotent by nature (push of the same branch,
// writes of the same content, checkout) are safe to run again under the
// new fence; others are settled as unknown rather than risk applying twice.
func (o *Once) reconcile(ctx context.Context, req backends.Request, e journal.Entry, lease lock.Lease) (backends.Result, error) {
	info, _ := backends.Info(req.Op())
	if info.Idempotent || req.Op() == backends.OpPush {
		if err := o.cfg.Journal.Takeover(ctx, e.ID, lease.Fence()); err != nil {
			return nil, err
		}
		return o.run(ctx, req, e, lease)
	}
	msg := "interrupted before it settled; outcome unknown"
	if err := o.cfg.Journal.Reconciled(ctx, e.ID, journal.Unknown, nil, string(backends.Conflict), msg); err != nil {
		return nil, err
	}
	return replay(req.Op(), journal.Entry{State: journal.Unknown})
}
