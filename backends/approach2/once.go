package approach2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	// RemoteReach reads the remote to settle a push whose own result does
	// not tell whether it landed (its lock was lost, or it ended in a
	// timeout). If nil, such a push is settled with its own error.
	RemoteReach RemoteReachFunc
	// Recovery, if set, is waited on (with the caller's context) before a
	// write takes its workspace lock, so that a write to a workspace whose
	// interrupted entries are still being reconciled runs after them.
	Recovery *Recovery
	Logger   *slog.Logger // if nil, slog.Default()
}

// Once makes writes exactly-once: each is recorded in the journal under the
// workspace lock before it runs and settled after; a retry with the same
// idempotency key gets the recorded result, a different request under a
// used key is refused, and a duplicate still running is waited for.
//
// A write that has started runs to completion even when the caller gives
// up (git's own time limits still bound it): its result is settled in the
// journal, and the caller's retry replays it. Stopping it half-way would
// leave an outcome nobody knows.
//
// Losing the workspace lock (its lease lapsed: the process paused past the
// TTL, Redis restarted or lost the key) stops every write but a push: a
// successor may already be changing the workspace. A push is the exception
// because stopping it is what would make its outcome unknowable (the
// remote may have updated its ref already), while letting it end changes
// only the remote, atomically, and the remote-tracking ref. Whatever ends
// a write, what is recorded is what happened: its own result when it
// succeeded, provably never started, or was refused by git; for a push
// that ended without git's answer (a timeout, an unavailable dependency),
// what the remote shows (see settlePush); for any other write that a lost
// lease stopped, unknown. Settling stays fenced: when a successor took the
// entry over (Takeover), the successor's outcome is the one recorded.
//
// A write whose lease was lost before it ran is not run (unavailable,
// nothing done): its entry stays started, and the caller's retry with the
// key runs it, as it runs a clone whose holder died before the clone
// finished (nothing of it is left). A push whose lease was lost while it
// ran and whose remote cannot be read stays started too (unavailable, its
// outcome being settled), for reconciliation or the retry to settle from
// the remote.
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
	if req.Op().IsRead() {
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
	queued := time.Now()
	if o.cfg.Recovery != nil {
		if err := o.cfg.Recovery.Wait(ctx, key); err != nil {
			return nil, err
		}
	}
	lease, err := o.cfg.Locker.Acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	waited := time.Since(queued)
	res, err := o.locked(ctx, req, key, begin, lease)
	if res != nil {
		// The engine reuses this lease (lock.Reentrant): the call queued
		// for its workspace, behind its recovery and its lock, here.
		res.GetServed().Wait += waited
	}
	return res, err
}

// locked runs a write under its workspace's lease: recorded in the
// journal, then replayed, reconciled or run.
func (o *Once) locked(ctx context.Context, req backends.Request, key string, begin journal.Begin, lease lock.Lease) (backends.Result, error) {
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	begin.Fence = lease.Fence()
	entry, outcome, err := o.start(ctx, begin, key, lease)
	if err != nil {
		return nil, err
	}
	runCtx, stop := detached(ctx, key, lease, req.Op().Settle() != backends.SettleByRemote)
	defer stop()
	switch outcome {
	case journal.Replay:
		return replay(req.Op(), entry)
	case journal.Reconcile:
		return o.reconcile(runCtx, req, entry, lease)
	}
	return o.run(runCtx, req, entry, lease)
}

// start records begin in the journal under lease (StartWait). An
// identical entry still started whose holder no longer holds the workspace
// lock — a live holder keeps it until it settles, so the holder died, e.g.
// another service replica killed — is settled first, as crash
// reconciliation settles it, instead of being waited for until it goes
// stale: then the caller gets that outcome at once, and a retry loop on
// this workspace cannot keep the lock from the reconciliation it waits for.
func (o *Once) start(ctx context.Context, begin journal.Begin, key string, lease lock.Lease) (journal.Entry, journal.Outcome, error) {
	entry, outcome, err := o.cfg.Journal.Start(ctx, begin)
	if errors.Is(err, journal.ErrInFlight) {
		if e, ok := o.abandoned(ctx, begin.Key, key, lease); ok && o.noEffect(ctx, e, key, lease) {
			return e, journal.Reconcile, nil // reconcile runs it again under this lease
		} else if ok && o.settleAbandoned(ctx, e, key, lease) {
			entry, outcome, err = o.cfg.Journal.Start(ctx, begin)
		}
	}
	if !errors.Is(err, journal.ErrInFlight) {
		return entry, outcome, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, o.cfg.WaitForDuplicate)
	defer cancel()
	return o.cfg.Journal.StartWait(waitCtx, begin)
}

// abandoned returns the started entry of k if its plan names the
// workspace lock key, held now under lease with a newer fence than the
// entry's: its holder no longer holds the lock (it died, or lost its
// lease). An entry without a plan (written before plans were recorded at
// its start) is left to crash reconciliation.
func (o *Once) abandoned(ctx context.Context, k journal.Key, key string, lease lock.Lease) (journal.Entry, bool) {
	entries, err := o.cfg.Journal.Unsettled(ctx, 0)
	if err != nil {
		return journal.Entry{}, false
	}
	for _, e := range entries {
		if e.Key == k && lockKeyOf(e) == key && e.Fence < lease.Fence() {
			return e, true
		}
	}
	return journal.Entry{}, false
}

// noEffect reports whether the entry e, whose holder no longer holds the
// workspace lock (held now under lease), left no effect, so that running
// it again cannot apply it twice: it never ran (its plan is pending), or
// it is a clone whose workspace does not exist (the clone did not finish;
// the engine removes what it left half-made).
func (o *Once) noEffect(ctx context.Context, e journal.Entry, key string, lease lock.Lease) bool {
	return pending(e) || cloneUnfinished(lock.WithLease(ctx, key, lease), o.cfg.Engine, e)
}

// settleAbandoned settles the abandoned entry e (see abandoned) under
// lease, as crash reconciliation would, and returns whether it did.
func (o *Once) settleAbandoned(ctx context.Context, e journal.Entry, key string, lease lock.Lease) bool {
	var p plan
	if json.Unmarshal(e.Prepared, &p) != nil {
		return false
	}
	cfg := ReconcileConfig{Journal: o.cfg.Journal, Locker: o.cfg.Locker, RemoteReach: o.cfg.RemoteReach, Engine: o.cfg.Engine, Logger: o.cfg.Logger}
	return settleHeld(lock.WithLease(ctx, key, lease), cfg.withDefaults(), e, p, lease)
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
	// The plan recorded with the entry names its workspace lock, so that
	// crash reconciliation takes that lock before judging the entry and a
	// live holder is left alone. A write whose plan needs nothing but the
	// request (every write but a push) is recorded with its full plan: one
	// statement starts and plans it. A push's plan reads the workspace
	// under the lock, so its entry starts pending (nothing ran yet) and run
	// records the full plan before the push runs; an entry whose holder
	// lost its lease, or died, while it was pending is run by a retry with
	// the key.
	prepared, err := json.Marshal(plan{LockKey: o.cfg.LockKey(req), Agent: s.Principal, Pending: !plannedAtStart(req.Op())})
	if err != nil {
		return journal.Begin{}, err
	}
	return journal.Begin{Key: journal.Key{Project: s.Principal.Project, Workspace: s.Workspace, IdempotencyKey: idem},
		Op: string(req.Op()), Fingerprint: fp, Prepared: prepared}, nil
}

// detached returns a context for running a started write: free of the
// caller's deadline and cancellation, carrying the held lease, and, with
// stopOnLoss, cancelled when the lease is lost.
func detached(ctx context.Context, key string, lease lock.Lease, stopOnLoss bool) (context.Context, func()) {
	run, cancel := context.WithCancel(lock.WithLease(context.WithoutCancel(ctx), key, lease))
	if lost := lease.Lost(); lost != nil && stopOnLoss {
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

// run records the plan recovery needs, unless its entry started with it
// (plannedAtStart), then runs the write and settles it. A write whose plan
// cannot be made never started: it settles as failed. A write whose lease
// was lost before it ran is not run: its entry stays (or is marked again)
// started with a pending plan, for the caller's retry to run (or for crash
// reconciliation to settle as never run). One whose entry another
// holder took over or settled meanwhile is not run either: the caller gets
// what was recorded, or is told to retry (see superseded).
func (o *Once) run(ctx context.Context, req backends.Request, entry journal.Entry, lease lock.Lease) (backends.Result, error) {
	if leaseLost(lease) {
		return o.notRun(ctx, req, entry, lease)
	}
	if plannedAtStart(req.Op()) && !pending(entry) {
		// Planned when it started (begin): nothing to record before it runs.
		return o.execute(ctx, req, entry, lease, plan{LockKey: o.cfg.LockKey(req), Agent: req.GetScope().Principal})
	}
	p, prepared, err := o.prepare(ctx, req, o.cfg.LockKey(req))
	if err == nil && leaseLost(lease) {
		return nil, lostBeforeRun(req.Op())
	}
	if err == nil {
		err = o.cfg.Journal.SetPrepared(ctx, entry.ID, lease.Fence(), prepared)
	}
	switch {
	case errors.Is(err, journal.ErrFenced):
		return o.superseded(ctx, req.Op(), entry)
	case err != nil && leaseLost(lease):
		return nil, lostBeforeRun(req.Op()) // what failed was cut by the loss (its context)
	case err != nil:
		o.settle(ctx, entry, lease.Fence(), nil, err)
		return nil, err
	}
	return o.execute(ctx, req, entry, lease, p)
}

// execute runs the planned write req and settles it.
func (o *Once) execute(ctx context.Context, req backends.Request, entry journal.Entry, lease lock.Lease, p plan) (backends.Result, error) {
	res, err := o.cfg.Engine.Execute(ctx, req)
	if err == nil || errors.Is(err, backends.ErrNotStarted) {
		o.settle(ctx, entry, lease.Fence(), res, err)
		return res, err
	}
	return o.unseen(ctx, req, entry, lease, p, err)
}

// unseen settles a write that failed after it started, when its error may
// not be the truth. A push that ended in a timeout, an unavailable
// dependency or an internal error (git's own rejections are the truth) is
// settled by what the remote shows; a push is never stopped by a lost
// lease, so that holds whether or not its lease was lost. Any other write
// whose lease was lost was stopped part-way: its outcome is unknown. Other
// failures are settled as they are. It returns what the caller is told,
// the same as a retry with the key replays; except for a push whose lease
// was lost and whose remote cannot be read, left started (unavailable, its
// outcome being settled) for reconciliation or the retry with the key.
func (o *Once) unseen(ctx context.Context, req backends.Request, entry journal.Entry, lease lock.Lease, p plan, opErr error) (backends.Result, error) {
	lost := leaseLost(lease)
	fence := lease.Fence()
	switch cat := backends.CategoryOf(opErr); {
	case req.Op().Settle() == backends.SettleByRemote && (cat == backends.Timeout || cat == backends.Unavailable || cat == backends.Canceled || cat == backends.Internal) &&
		o.cfg.RemoteReach != nil && p.Target != "":
		why := fmt.Sprintf("the push ended with an error (%s)", backends.MessageOf(opErr))
		if lost {
			why = fmt.Sprintf("the workspace lock was lost while the push ran, and it ended with an error (%s)", backends.MessageOf(opErr))
		}
		checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remoteCheckTimeout)
		out, err := settlePush(checkCtx, o.cfg.RemoteReach, entry, p, why)
		cancel()
		if err != nil {
			o.cfg.Logger.Warn("the remote could not be read to settle a push", "entry", entry.ID, "err", err)
			if lost {
				// Left started: crash reconciliation, or the caller's retry
				// with the key, settles it from the remote once it answers.
				return nil, backends.Errorf(backends.Unavailable, "the workspace lock was lost while this push ran (it could not be renewed in time), "+
					"and the remote could not be read to tell whether it landed; its outcome is being settled: retry the same call "+
					"(same idempotency key) to get it, or check the remote branch (log) before pushing again")
			}
			break
		}
		if out.state == journal.Succeeded {
			res := backends.NewResult(req.Op())
			if err := json.Unmarshal(out.result, res); err != nil {
				return nil, backends.Errorf(backends.Internal, "the settled push result cannot be read: %w", err)
			}
			o.settle(ctx, entry, fence, res, nil)
			return res, nil
		}
		err = &backends.Error{Category: backends.Category(out.category), Message: out.message}
		o.settle(ctx, entry, fence, nil, err)
		return nil, err
	case lost && req.Op().Settle() != backends.SettleByRemote:
		return o.settleUnknown(ctx, req.Op(), entry, fence,
			"the workspace lock was lost while it ran, so it was stopped part-way")
	}
	o.settle(ctx, entry, fence, nil, opErr)
	return nil, opErr
}

// plannedAtStart reports whether op's plan needs nothing but its request,
// so that its journal entry starts with the full plan (see begin): every
// write but a push, whose plan reads the branch and commit it pushes.
func plannedAtStart(op backends.Op) bool { return op.Settle() != backends.SettleByRemote }

// notRun answers a write whose lease was lost before it ran. An entry
// started with its full plan is marked pending again first, so that what
// recovery and the caller's retry see is that it never ran (as for an
// entry that started pending); if that cannot be recorded the entry keeps
// its plan, and is settled as any interrupted write is.
func (o *Once) notRun(ctx context.Context, req backends.Request, entry journal.Entry, lease lock.Lease) (backends.Result, error) {
	if pending(entry) {
		return nil, lostBeforeRun(req.Op())
	}
	prepared, err := json.Marshal(plan{LockKey: o.cfg.LockKey(req), Agent: req.GetScope().Principal, Pending: true})
	if err == nil {
		err = o.cfg.Journal.SetPrepared(context.WithoutCancel(ctx), entry.ID, lease.Fence(), prepared)
	}
	if errors.Is(err, journal.ErrFenced) {
		return o.superseded(ctx, req.Op(), entry)
	}
	if err != nil {
		o.cfg.Logger.Warn("a write whose lease was lost before it ran could not be marked as not run", "entry", entry.ID, "err", err)
	}
	return nil, lostBeforeRun(req.Op())
}

// interruptedMessage is why a write whose holder died before it settled
// has an unknown outcome.
const interruptedMessage = "it was interrupted before it settled (the process running it stopped)"

// lostBeforeRun is the answer to a write whose workspace lease was lost
// before it ran: nothing was done, and its entry stays started (pending),
// so that a retry with the same key runs it.
func lostBeforeRun(op backends.Op) error {
	return backends.NotStarted(backends.Errorf(backends.Unavailable,
		"the workspace lock was lost before this %s ran (it could not be renewed in time); nothing was done: retry the same call (same idempotency key)", op))
}

// superseded answers the caller of a write whose entry changed under it
// before it ran (recording its plan was fenced): another holder of the
// workspace lock took the entry over, or settled it (crash reconciliation,
// or a retry with the key, after this holder's lease lapsed). A settled
// entry's outcome is the answer, as a retry's replay; one another holder
// runs now is not run here: retry to get its outcome.
func (o *Once) superseded(ctx context.Context, op backends.Op, entry journal.Entry) (backends.Result, error) {
	cur, err := o.cfg.Journal.Get(context.WithoutCancel(ctx), entry.ID)
	if err == nil && cur.State.Settled() {
		return replay(op, cur)
	}
	return nil, backends.NotStarted(backends.Errorf(backends.Unavailable,
		"the workspace lock was lost before this %s ran (it could not be renewed in time), and another call with the same idempotency key "+
			"took it over; nothing was done by this call: retry the same call (same idempotency key) to get its outcome", op))
}

// remoteCheckTimeout bounds reading the remote to settle a push.
const remoteCheckTimeout = 2 * time.Minute

// leaseLost reports whether the lease is known to be lost.
func leaseLost(l lock.Lease) bool {
	select {
	case <-l.Lost():
		return true
	default:
		return false
	}
}

// settleUnknown records that the outcome of the entry run under fence is
// unknown, unless a successor took the entry over (its fence moved on) or
// it was settled meanwhile, and returns the error a replay gives. The
// journal's Reconciled is not fenced, so the fence is read first; a
// Takeover slipping in between would need the entry to have gone stale
// (the journal's in-flight timeout, minutes) during that instant.
func (o *Once) settleUnknown(ctx context.Context, op backends.Op, entry journal.Entry, fence int64, msg string) (backends.Result, error) {
	ctx = context.WithoutCancel(ctx)
	cur, err := o.cfg.Journal.Get(ctx, entry.ID)
	if err == nil && cur.State == journal.Started && cur.Fence == fence {
		err = o.cfg.Journal.Reconciled(ctx, entry.ID, journal.Unknown, nil, string(backends.Conflict), msg)
	}
	if err != nil {
		o.cfg.Logger.Error("journal entry not settled", "entry", entry.ID, "op", entry.Op, "fence", fence, "err", err)
	}
	return replay(op, journal.Entry{State: journal.Unknown, ErrorMessage: msg})
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
	return nil, unknownOutcome(op, e.ErrorMessage)
}

// unknownOutcome is the answer to a write whose outcome is unknown, the
// same to the caller that ran it and to every retry with its key: why
// (when recorded), and what to do next. The agent may have sent no key
// (one was made up for the journal), so the answer does not assume one.
func unknownOutcome(op backends.Op, why string) error {
	if why != "" {
		why = ": " + why
	}
	return backends.Errorf(backends.Conflict, "the outcome of this %s is unknown%s; check the workspace (status, log) before doing it again "+
		"(a retry with the same idempotency key gets this answer again)", op, why)
}

// reconcile handles an identical operation left started by a holder that
// died. Operations that are idempotent by nature (push of the same branch,
// writes of the same content, checkout) are safe to run again under the
// new fence; others are settled as unknown rather than risk applying twice.
//
// An entry that left no effect (see noEffect) is run again whatever the
// operation: it is taken over first, so that its holder, if alive, can no
// longer start it, and a pending one is run if its plan is still pending
// then.
func (o *Once) reconcile(ctx context.Context, req backends.Request, e journal.Entry, lease lock.Lease) (backends.Result, error) {
	s := req.Op().Settle()
	if rerun := s == backends.SettleRerun || s == backends.SettleByRemote; rerun || o.noEffect(ctx, e, o.cfg.LockKey(req), lease) {
		if err := o.cfg.Journal.Takeover(ctx, e.ID, lease.Fence()); err != nil {
			if errors.Is(err, journal.ErrFenced) {
				return o.superseded(ctx, req.Op(), e)
			}
			return nil, err
		}
		if rerun || !pending(e) { // a clone that left no workspace
			return o.run(ctx, req, e, lease)
		}
		if cur, err := o.cfg.Journal.Get(ctx, e.ID); err != nil {
			return nil, err
		} else if pending(cur) {
			return o.run(ctx, req, cur, lease)
		}
		// Its holder recorded its plan just before the takeover: it may
		// have run.
	}
	msg := interruptedMessage
	if err := o.cfg.Journal.Reconciled(ctx, e.ID, journal.Unknown, nil, string(backends.Conflict), msg); err != nil {
		if errors.Is(err, journal.ErrSettled) {
			return o.superseded(ctx, req.Op(), e)
		}
		return nil, err
	}
	return replay(req.Op(), journal.Entry{State: journal.Unknown, ErrorMessage: msg})
}
