// Package redislock is the Redis implementation of lock.Locker: one lock per
// workspace shared by every gateway and service process, so that two
// processes never mutate a workspace at the same time.
//
// A grant is `SET <prefix>lock:<key> <token> NX PX <ttl>` on one Redis
// master (threats.md §3.1; a single instance, or the master of a Sentinel
// set, see Failover), and the same Lua script increments
// `<prefix>fence:<key>` and returns it as the lease's fencing token. Taking
// the fence atomically with the grant matters: a fence taken in a second
// round trip could order a paused holder's fence after its successor's, and
// then the resources that check fences (the PostgreSQL journal) would accept
// the stale holder's writes. A Redis lock alone is only an efficiency
// device (Kleppmann, threats.md §3.2); correctness rests on those fence
// checks. Fence keys never expire so that fences stay monotonic.
//
// A watchdog renews each lease at TTL/3 with a compare-and-PEXPIRE. When
// the key is gone or holds another token the lease is lost at once (Lost is
// closed); transient Redis errors are retried until TTL/2 has passed since
// the last good renewal, then the lease counts as expired. Release deletes
// the key only while it still holds the lease's token (compare-and-delete).
// When Redis cannot be reached Acquire fails closed with an unavailable
// error: no caller proceeds without the lock.
//
// # Failover
//
// With Redis Sentinel (go-redis' failover client) the lock lives on the
// master, and replication to the replicas is asynchronous: a failover can
// promote a replica that never received the last grant, its fence INCR, or
// a renewal. A new holder could then be granted the same key while the old
// one still works, with the same fence, and the journal's fence checks
// (which refuse only an older fence) would let both through. So with
// Options.WaitReplicas (redis.sentinel.wait_replicas, default 1) every
// grant and renewal is followed, on the same connection, by WAIT: a grant
// counts only once that many replicas have it, else it is given back and
// Acquire fails as unavailable (fail closed); a renewal counts only once
// acknowledged, else it is retried and the lease expires at TTL/2 as when
// Redis is unreachable. Sentinel promotes the replica with the most
// replicated data, so an acknowledged grant and its fence survive the
// promotion: fences keep increasing across a failover, the old holder's
// lease is either still valid on the new master (it keeps renewing) or
// lost (Lost closes), and a successor's fence is always greater than its
// predecessor's. The price: while no replica acknowledges (the replica is
// down) no lock is granted; run two replicas to keep locking through the
// loss of one. WAIT does not make Redis strongly consistent: a replica
// that acknowledged but is not the one promoted (another with a higher
// replica-priority, or a partition) could still lose a grant; with equal
// priorities Sentinel picks the most up-to-date replica.
//
// A release is a write too: a delete that reached the old master after the
// replica was promoted, or before it was replicated, leaves the key on the
// new master, held by nobody, until its TTL passes, and the workspace's
// next operation waits for it. So with WaitReplicas a release is followed
// by WAIT as well, and one that no replica acknowledged (or that Redis did
// not answer) is retried in the background, compare-and-delete, until a
// delete is acknowledged or the TTL has passed (Release itself does not
// wait for that).
//
// Errors of the failover window (READONLY from the demoted master,
// LOADING, MASTERDOWN, connections refused or reset, the sentinels naming
// no master yet, an unacknowledged grant) fail Acquire as unavailable:
// the caller retries, and go-redis itself retries READONLY, LOADING and
// MASTERDOWN a few times first.
//
// Redis Cluster is not supported: the grant script touches two keys (the
// lock and its fence) that must share a hash slot; it would need them
// under one hash tag ("<prefix>{<key>}:lock", "<prefix>{<key>}:fence")
// and WAIT on the shard's master, and a cluster failover loses
// unacknowledged writes the same way.
//
// Why not bsm/redislock or go-redsync: neither issues a fencing token, let
// alone atomically with the grant, and neither has a watchdog; the renewal
// loops their docs suggest show the gaps listed in threats.md §3.4
// (redsync's ErrTaken on Extend treated as transient, WithSetNXOnExtend
// silently re-creating a lapsed lock; bsm's caller-side refresh loop). The
// scripts below are the whole of what those libraries would give us.
package redislock

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/internal/promreg"
)

// Options configures a Locker. The zero value is usable.
type Options struct {
	// TTL is how long a grant lasts without renewal; the watchdog renews at
	// TTL/3. Zero means 10s; values below 30ms are raised to 30ms. Redis
	// keeps it in whole milliseconds.
	TTL time.Duration
	// RetryInterval is the mean pause between attempts while waiting for a
	// held key; each pause is jittered to between 0.5 and 1.5 times it.
	// Zero means 50ms.
	RetryInterval time.Duration
	// Prefix starts every Redis key. Empty means "gitgate:".
	Prefix string
	// Auditor, when set, receives acquire, renew, release, lost and expire
	// events off the hot path (see Locker). Nil records nothing.
	Auditor lock.Auditor
	// Logger receives warnings (lost leases, dropped audit events). Nil
	// means slog.Default().
	Logger *slog.Logger
	// Now stamps audit events. Nil means time.Now. Lease timing always uses
	// the monotonic clock, never Now.
	Now func() time.Time
	// Registerer receives gitgate_lock_leases_lost_total. Nil registers
	// nothing (the leases lost are still logged).
	Registerer prometheus.Registerer
	// WaitReplicas, when positive, is how many replicas must acknowledge a
	// grant, and each renewal, before it counts (WAIT on the connection
	// that wrote it; see the package doc, "Failover"). A grant not
	// acknowledged within WaitTimeout is given back and Acquire fails as
	// unavailable; an unacknowledged renewal counts as a failed one. Zero
	// waits for none (a single instance, or a set that accepts repeated
	// fences after a failover).
	WaitReplicas int
	// WaitTimeout bounds each wait for the replicas. Zero means
	// DefaultWaitTimeout; it is kept to at most TTL/4, so that a renewal
	// that waited can still be retried before the lease expires.
	WaitTimeout time.Duration
}

// The defaults of Options.
const (
	DefaultTTL           = 10 * time.Second
	DefaultRetryInterval = 50 * time.Millisecond
	DefaultPrefix        = "gitgate:"
	DefaultWaitTimeout   = 500 * time.Millisecond
)

// minTTL keeps the watchdog's retry intervals (TTL/10, TTL/50 near the
// expiry) at a millisecond or more.
const minTTL = 30 * time.Millisecond

// cleanupTimeout bounds the Redis calls that run after the caller's context
// ended: the release of a lease and the undoing of a cut-off grant.
const cleanupTimeout = 2 * time.Second

// Locker grants exclusive, fenced leases through Redis. It is safe for
// concurrent use.
type Locker struct {
	client redis.UniversalClient
	opts   Options
	audit  *auditQueue
	lost   *prometheus.CounterVec // leases lost, by event (lost, expire)
}

var _ lock.Locker = (*Locker)(nil)

// New returns a Locker that keeps its locks in client, with opts' zero
// values replaced by the defaults.
func New(client redis.UniversalClient, opts Options) *Locker {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	opts.TTL = max(opts.TTL, minTTL)
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	opts.WaitTimeout = max(min(opts.WaitTimeout, opts.TTL/4), time.Millisecond)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lost := promreg.Register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_lock_leases_lost_total",
		Help: "Workspace lock leases lost while held, by event: lost (the key was gone or another holder's), expire (not renewed in time: Redis unreachable or the process starved of CPU).",
	}, []string{"event"}))
	for _, e := range []string{eventLost, eventExpire} {
		lost.WithLabelValues(e)
	}
	return &Locker{client: client, opts: opts, audit: newAuditQueue(opts.Auditor, opts.Logger), lost: lost}
}

// The events of a lease lost while held (audit events and the metric's
// label).
const (
	eventLost   = "lost"
	eventExpire = "expire"
)

// Acquire waits until key is free or ctx ends, and returns a lease whose
// watchdog keeps the key until Release. A wait ended by ctx returns a
// timeout (deadline) or unavailable (cancelled) error; a Redis failure
// returns an unavailable error.
func (l *Locker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	token, err := newToken()
	if err != nil {
		return nil, backends.Errorf(backends.Internal, "cannot make a lock token: %w", err)
	}
	for {
		start := time.Now()
		fence, err := l.try(ctx, key, token)
		if err != nil {
			return nil, l.acquireError(ctx, key, token, err)
		}
		if fence > 0 {
			return l.grant(ctx, key, token, fence, start), nil
		}
		if !pause.For(ctx, jitter(l.opts.RetryInterval)) {
			return nil, waitError(ctx.Err())
		}
	}
}

// try runs one grant attempt: the new fence, or 0 when the key is held.
// With WaitReplicas, a grant the replicas did not acknowledge in time is
// given back and try fails: its fence might not survive a failover.
func (l *Locker) try(ctx context.Context, key, token string) (int64, error) {
	keys := []string{l.lockKey(key), l.fenceKey(key)}
	args := []any{token, l.opts.TTL.Milliseconds()}
	if l.opts.WaitReplicas <= 0 {
		return acquireScript.Run(ctx, l.client, keys, args...).Int64()
	}
	var fence int64
	err := l.replicated(ctx, func(p redis.Pipeliner) *redis.Cmd { return acquireScript.Eval(ctx, p, keys, args...) }, &fence)
	var nr *notReplicatedError
	if errors.As(err, &nr) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = releaseScript.Run(cctx, l.client, []string{l.lockKey(key)}, token).Err()
	}
	return fence, err
}

// replicated runs the script cmd writes and WAIT in one pipeline (one
// connection: WAIT counts the replicas that have that connection's
// writes), stores the script's integer reply in out, and returns a
// *notReplicatedError when the script wrote (a positive reply) but fewer
// than WaitReplicas replicas acknowledged it within WaitTimeout.
func (l *Locker) replicated(ctx context.Context, cmd func(redis.Pipeliner) *redis.Cmd, out *int64) error {
	var script *redis.Cmd
	var wait *redis.IntCmd
	_, err := l.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		script = cmd(p)
		wait = redis.NewIntCmd(ctx, "WAIT", l.opts.WaitReplicas, l.opts.WaitTimeout.Milliseconds())
		_ = p.Process(ctx, wait)
		return nil
	})
	if script == nil || script.Err() != nil {
		return err
	}
	n, err := script.Int64()
	if err != nil {
		return err
	}
	*out = n
	if n <= 0 {
		return nil
	}
	acked, err := wait.Result()
	if err == nil && acked < int64(l.opts.WaitReplicas) {
		err = fmt.Errorf("%d of the %d replicas required acknowledged it within %s", acked, l.opts.WaitReplicas, l.opts.WaitTimeout)
	}
	if err != nil {
		return &notReplicatedError{err: err}
	}
	return nil
}

// notReplicatedError is a write the replicas did not acknowledge in time.
type notReplicatedError struct{ err error }

func (e *notReplicatedError) Error() string {
	return "the lock's change was not replicated (a failover could lose it): " + e.err.Error()
}

func (e *notReplicatedError) Unwrap() error { return e.err }

// acquireError classifies a failed attempt. An attempt cut off by ctx may
// have succeeded in Redis with its reply lost; its token is deleted again,
// best effort, rather than leaving the key held until its TTL passes. (After
// other errors Redis is most likely unreachable, and the TTL has to do.)
func (l *Locker) acquireError(ctx context.Context, key, token string, err error) error {
	if ctx.Err() == nil {
		return unavailable(err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = releaseScript.Run(cctx, l.client, []string{l.lockKey(key)}, token).Err()
	return waitError(ctx.Err())
}

func (l *Locker) lockKey(key string) string  { return l.opts.Prefix + "lock:" + key }
func (l *Locker) fenceKey(key string) string { return l.opts.Prefix + "fence:" + key }

// event queues an audit event for lease le.
func (l *Locker) event(le *lease, name string) {
	l.audit.push(lock.AuditEvent{Key: le.key, Holder: le.holder, Fence: le.fence, Event: name, At: l.opts.Now().UTC()})
}

// newToken returns 128 random bits, hex-encoded: the lease's secret.
func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("crypto/rand: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// holderID is the opaque id audit events carry instead of the token.
func holderID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// jitter returns d scaled by a random factor in [0.5, 1.5).
func jitter(d time.Duration) time.Duration {
	return d/2 + mrand.N(d)
}

func waitError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &backends.Error{Category: backends.Timeout, Message: "timed out waiting for the workspace lock (another operation on this workspace is running)", Err: err}
	}
	if errors.Is(err, context.Canceled) { // the caller gave up: not an outage
		return &backends.Error{Category: backends.Canceled, Message: "cancelled while waiting for the workspace lock", Err: err}
	}
	return &backends.Error{Category: backends.Unavailable, Message: "cancelled while waiting for the workspace lock", Err: err}
}

func unavailable(err error) error {
	return backends.Errorf(backends.Unavailable, "the lock service (Redis) is unavailable (unreachable, failing over, or its replicas do not acknowledge); retry later: %w", err)
}
