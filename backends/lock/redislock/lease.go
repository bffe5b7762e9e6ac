package redislock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
)

// lease is a granted lock and its watchdog.
type lease struct {
	l      *Locker
	key    string
	token  string // the secret that proves ownership; never logged or audited
	holder string // the opaque id audit events carry
	fence  int64

	lost     chan struct{}
	lostOnce sync.Once
	cancel   context.CancelFunc // stops the watchdog
	done     chan struct{}      // closed when the watchdog has exited

	mu       sync.Mutex // serialises Release
	released bool

	paused atomic.Bool // test hook: the watchdog skips its turns, as in a paused process
}

// grant starts the lease of a successful attempt begun at start.
func (l *Locker) grant(ctx context.Context, key, token string, fence int64, start time.Time) *lease {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	le := &lease{
		l: l, key: key, token: token, holder: holderID(token), fence: fence,
		lost: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
	}
	l.event(le, "acquire")
	go le.watch(wctx, start)
	return le
}

// Fence returns the fencing token taken with the grant.
func (le *lease) Fence() int64 { return le.fence }

// Lost is closed when the lease is known to be lost.
func (le *lease) Lost() <-chan struct{} { return le.lost }

// Release stops the watchdog and deletes the lock if it still holds the
// lease's token. Releasing again, or after the lease was lost, is harmless.
// A cancelled ctx does not stop the release (a cancelled operation must
// still give its lock up); the Redis call is bounded by cleanupTimeout.
//
// A release that Redis did not answer, or (with WaitReplicas) whose delete
// no replica acknowledged, is not final: a failover can promote a replica
// that still has the key, and the next operation on the workspace would
// wait for it to expire (a whole TTL). Such a release is retried in the
// background (see settleRelease) until a delete is acknowledged or the TTL
// has passed, so that the key is deleted on the new master as soon as the
// client follows the failover. Release returns at once either way: a
// failed first attempt returns an unavailable error saying so.
func (le *lease) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	le.cancel()
	<-le.done // no renewal can follow the delete
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.released {
		return nil
	}
	le.released = true
	start := time.Now()
	n, err := le.l.releaseOnce(ctx, le.key, le.token)
	var nr *notReplicatedError
	switch {
	case err == nil && n == 1:
		le.l.event(le, "release")
		return nil
	case err == nil:
		le.lose(eventLost, errors.New("the lock had expired or passed to another holder before its release"))
		return nil
	case errors.As(err, &nr): // deleted on the master; a failover could bring it back
		le.l.event(le, "release")
		go le.settleRelease(start, true)
		return nil
	}
	go le.settleRelease(start, false)
	return backends.Errorf(backends.Unavailable, "cannot release the workspace lock now; the lock service (Redis) is unreachable or failing over: the release is retried until the lock expires by itself: %w", err)
}

// settleRelease retries a release begun at start whose delete was not
// acknowledged (deleted: the master deleted it) or not made (Redis did not
// answer), every settleInterval or so, until a delete is acknowledged, or
// the TTL has passed since start (no copy of the key can be left anywhere
// then: the last renewal ran before start), or the client is closed.
// Without WaitReplicas there is no replica to be promoted, and a key found
// gone settles it too. With WaitReplicas a key found gone does not: the
// master answering may be the one that lost the delete's replication, and a
// later failover could still bring the key back. Each attempt deletes the
// key only where it still holds the lease's token.
func (le *lease) settleRelease(start time.Time, deleted bool) {
	l := le.l
	ttl := l.opts.TTL
	deadline := start.Add(ttl)
	answered := deleted
	var err error
	for {
		wait := min(jitter(min(ttl/10, settleInterval)), time.Until(deadline))
		if wait <= 0 || !pause.For(context.Background(), wait) {
			break
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		var n int64
		n, err = l.releaseOnce(ctx, le.key, le.token)
		cancel()
		var nr *notReplicatedError
		switch {
		case err == nil && n == 1: // deleted here, and acknowledged
			if deleted {
				l.opts.Logger.Info("workspace lock released again on the current Redis master (the first delete was not replicated)",
					"key", le.key, "holder", le.holder, "fence", le.fence)
			} else {
				l.event(le, "release")
			}
			return
		case err == nil && l.opts.WaitReplicas <= 0: // gone, and no replica can bring it back
			return
		case err == nil:
			answered = true
		case errors.As(err, &nr):
			answered, deleted = true, true
		case errors.Is(err, redis.ErrClosed): // the process is shutting its client down
			return
		}
	}
	if !answered {
		l.opts.Logger.Warn("workspace lock not released: the lock service (Redis) did not answer; it has expired by itself",
			"key", le.key, "holder", le.holder, "fence", le.fence, "err", err)
	}
}

// settleInterval is the longest mean pause between two attempts of
// settleRelease (TTL/10 when shorter): short, since a failover's window is
// seconds and the next operation on the workspace waits for the key.
const settleInterval = 200 * time.Millisecond

// releaseOnce runs the release script: 1 when it deleted the key, 0 when
// the key is gone or another holder's. With WaitReplicas, a delete the
// replicas did not acknowledge in time is a *notReplicatedError.
func (l *Locker) releaseOnce(ctx context.Context, key, token string) (int64, error) {
	keys := []string{l.lockKey(key)}
	if l.opts.WaitReplicas <= 0 {
		return releaseScript.Run(ctx, l.client, keys, token).Int64()
	}
	var n int64
	err := l.replicated(ctx, func(p redis.Pipeliner) *redis.Cmd { return releaseScript.Eval(ctx, p, keys, token) }, &n)
	return n, err
}

// watch renews the lease at TTL/3 until it is released or lost. lastGood
// is when the last successful grant or renewal was sent.
func (le *lease) watch(ctx context.Context, lastGood time.Time) {
	defer close(le.done)
	delay := le.l.opts.TTL / 3
	for pause.For(ctx, delay) {
		if le.paused.Load() {
			continue
		}
		var stop bool
		delay, lastGood, stop = le.renew(ctx, lastGood)
		if stop {
			return
		}
	}
}

// renew makes one renewal attempt and returns the delay to the next one,
// the new time of the last good renewal, and whether the watchdog stops.
// A transient failure is retried (see retryDelay) until TTL/2 has passed
// since lastGood, when the lease expires; an attempt is cut off at that
// point too.
func (le *lease) renew(ctx context.Context, lastGood time.Time) (time.Duration, time.Time, bool) {
	ttl := le.l.opts.TTL
	start := time.Now()
	rctx, cancel := context.WithDeadline(ctx, lastGood.Add(ttl/2))
	n, err := le.l.renewOnce(rctx, le.key, le.token)
	cancel()
	switch {
	case ctx.Err() != nil: // released meanwhile
		return 0, lastGood, true
	case err == nil && n == 1:
		le.l.event(le, "renew")
		return ttl / 3, start, false
	case err == nil:
		le.lose(eventLost, errors.New("the lock key is gone or held by another holder"))
		return 0, lastGood, true
	case time.Since(lastGood) >= ttl/2:
		le.lose(eventExpire, err)
		return 0, lastGood, true
	}
	le.l.opts.Logger.WarnContext(ctx, "workspace lock renewal failed; retrying", "key", le.key, "holder", le.holder, "fence", le.fence, "err", err)
	return retryDelay(ttl, time.Until(lastGood.Add(ttl/2)), le.l.opts.WaitTimeout), lastGood, false
}

// retryDelay is the pause before retrying a failed renewal, left before
// the lease expires: TTL/10, but short enough that the attempt starts at
// least margin (the replicas' wait, WaitTimeout) before the expiry, where
// it can still succeed, and then every TTL/50 until the expiry. (A retry
// timed at the expiry itself could only fail: after a Sentinel failover
// the promoted master has replicas again a moment before many leases'
// last chance.)
func retryDelay(ttl, left, margin time.Duration) time.Duration {
	return max(min(ttl/10, left-margin), min(ttl/50, left), 0)
}

// lose closes Lost once and records event (eventLost when Redis said the
// key is not ours, eventExpire when it could not be renewed in time) in the
// audit and gitgate_lock_leases_lost_total.
func (le *lease) lose(event string, cause error) {
	le.lostOnce.Do(func() {
		close(le.lost)
		le.l.opts.Logger.Warn("workspace lock lost; the operation holding it must stop", "key", le.key, "holder", le.holder, "fence", le.fence, "event", event, "err", cause)
		le.l.event(le, event)
		le.l.lost.WithLabelValues(event).Inc()
	})
}

// renewOnce runs the renewal script: 1 when renewed, 0 when the key is
// gone or another holder's. With WaitReplicas, a renewal the replicas did
// not acknowledge in time is an error (retried like any failed renewal):
// the holder must not count on an expiry a promoted replica does not have.
func (l *Locker) renewOnce(ctx context.Context, key, token string) (int64, error) {
	keys := []string{l.lockKey(key)}
	args := []any{token, l.opts.TTL.Milliseconds()}
	if l.opts.WaitReplicas <= 0 {
		return renewScript.Run(ctx, l.client, keys, args...).Int64()
	}
	var n int64
	err := l.replicated(ctx, func(p redis.Pipeliner) *redis.Cmd { return renewScript.Eval(ctx, p, keys, args...) }, &n)
	return n, err
}
