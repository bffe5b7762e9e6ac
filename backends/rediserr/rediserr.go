// Package rediserr classifies the errors of Redis calls (go-redis) into
// gitgate's error categories, the same way for every package that keeps
// state in Redis: the workspace locks, the bindings, the budget, the
// branch records.
//
// A failover (Sentinel promoting a replica) shows up as several errors:
// READONLY from the demoted master, LOADING from a node reloading its data,
// MASTERDOWN from a replica without its master, NOREPLICAS, connections
// refused or reset, timeouts, and the sentinels naming no master for a
// moment. Every one of them is transient, so every one is Unavailable
// (retry later), never Internal. Internal is kept for replies that mean a
// bug (WRONGTYPE, a syntax error, a script error); the caller's own
// deadline or cancellation is Timeout or Canceled.
package rediserr

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
)

// transientReplies are the prefixes of Redis error replies that a failover,
// a restart or a load spike produces: retrying later succeeds.
var transientReplies = []string{
	"READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN",
	"MOVED", "ASK", "BUSY", "OOM", "NOAUTH", "WRONGPASS", "NOPERM", "ERR max number of clients",
	"UNBLOCKED", "MISCONF",
}

// Category returns the category of err, an error of a Redis call: ""
// for nil, Timeout or Canceled when a context ended the call, Internal for
// an error reply that means a bug (not in the transient list) and for an
// unexpected redis.Nil, and Unavailable for everything else (transient
// replies, network errors and i/o timeouts, pool errors, a closed client,
// no master known to the sentinels). An error that already carries a
// category keeps it.
func Category(err error) backends.Category {
	var be *backends.Error
	var reply redis.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &be):
		return be.Category
	case errors.Is(err, context.DeadlineExceeded):
		return backends.Timeout
	case errors.Is(err, context.Canceled):
		return backends.Canceled
	case fromClient(err):
		return backends.Unavailable
	case errors.Is(err, redis.Nil):
		return backends.Internal // a caller that did not expect redis.Nil
	case errors.As(err, &reply) && !isTransientReply(reply.Error()):
		return backends.Internal
	}
	return backends.Unavailable
}

// fromClient reports whether err, or an error it wraps, is one of
// go-redis' own ("redis: ..." but redis.Nil), such as "redis: all
// sentinels specified in configuration are unreachable", which wraps the
// sentinels' replies (even redis.Nil for a master they do not know): those
// replies are not to the caller's command, and the condition is an outage.
func fromClient(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err != redis.Nil && strings.HasPrefix(err.Error(), "redis: ") { //nolint:errorlint // redis.Nil itself, not an error wrapping it
			return true
		}
	}
	return false
}

func isTransientReply(msg string) bool {
	for _, p := range transientReplies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Wrap returns err as a *backends.Error of Category(err) whose message
// starts with what (the store: "workspace bindings store (Redis)") and
// says what the category means; nil and errors that already carry a
// category pass unchanged.
func Wrap(what string, err error) error {
	var be *backends.Error
	if err == nil || errors.As(err, &be) {
		return err
	}
	switch c := Category(err); c {
	case backends.Timeout:
		return backends.Errorf(c, "%s did not answer in time: %w", what, err)
	case backends.Canceled:
		return backends.Errorf(c, "the caller gave up before the %s answered: %w", what, err)
	case backends.Internal:
		return backends.Errorf(c, "%s refused the command: %w", what, err)
	}
	return backends.Errorf(backends.Unavailable, "%s is unavailable (unreachable, or failing over); retry later: %w", what, err)
}
