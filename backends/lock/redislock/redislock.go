// Package redislock is the Redis implementation of lock.Locker: one lock per
// workspace shared by every gateway and service process, so that two
// processes never mutate a workspace at the same time.
//
// A grant is `SET <prefix>lock:<key> <token> NX PX <ttl>` on a single Redis
// instance (threats.md §3.1), and the same Lua script increments
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
}

// The defaults of Options.
const (
	DefaultTTL           = 10 * time.Second
	DefaultRetryInterval = 50 * time.Millisecond
	DefaultPrefix        = "gitgate:"
)

// minTTL keeps the watchdog's retry interval (TTL/10) at a few milliseconds.
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
func (l *Locker) try(ctx context.Context, key, token string) (int64, error) {
	keys := []string{l.lockKey(key), l.fenceKey(key)}
	return acquireScript.Run(ctx, l.client, keys, token, l.opts.TTL.Milliseconds()).Int64()
}

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
	return backends.Errorf(backends.Unavailable, "the lock service (Redis) is unreachable: %w", err)
}
