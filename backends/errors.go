package backends

import (
	"context"
	"errors"
	"fmt"
)

// Category classifies an error so that agents, breakers and dashboards can act
// on it without parsing messages. The values are stable API: they appear in
// tool results, metric labels and Approach 2's gRPC status details
// (ErrorInfo reasons).
type Category string

// The error categories.
const (
	InvalidArgument   Category = "invalid_argument"   // the request is malformed or refused by policy; retrying will not help
	Forbidden         Category = "forbidden"          // the caller may not do this (other project, host not allowed)
	Unauthenticated   Category = "unauthenticated"    // missing or wrong credentials (agent's, or the project's git token)
	NotFound          Category = "not_found"          // workspace, file, ref or repository does not exist
	Conflict          Category = "conflict"           // the current state does not allow it (exists already, non-fast-forward, nothing to commit)
	RateLimited       Category = "rate_limited"       // slow down and retry later
	ResourceExhausted Category = "resource_exhausted" // a size, count or capacity limit was reached
	Unavailable       Category = "unavailable"        // a dependency is down or unreachable; retry later
	Timeout           Category = "timeout"            // the operation ran past its deadline
	Canceled          Category = "canceled"           // the caller gave up (its context was cancelled) before the answer
	Internal          Category = "internal"           // a bug or an unexpected failure
)

// Categories lists every category, for metrics initialisation and docs.
var Categories = []Category{
	InvalidArgument, Forbidden, Unauthenticated, NotFound, Conflict,
	RateLimited, ResourceExhausted, Unavailable, Timeout, Canceled, Internal,
}

// IsClientMistake reports whether errors of this category come from the
// caller (its request, or its giving up: canceled) rather than from the
// backend's health; such errors must not trip circuit breakers nor count as
// a backend's failures.
func (c Category) IsClientMistake() bool {
	switch c {
	case InvalidArgument, Forbidden, Unauthenticated, NotFound, Conflict, Canceled:
		return true
	}
	return false
}

// IsBackendFailure reports whether a call that ended with this category
// counts as a failure of the backend that served it: any error but a
// client's mistake ("" is success).
func (c Category) IsBackendFailure() bool { return c != "" && !c.IsClientMistake() }

// Error is the error type every backend returns. Message is written for the
// agent: it says what was wrong and, where it helps, what to do instead.
type Error struct {
	Category Category
	Op       Op
	Message  string
	Err      error // the underlying cause, if any; never shown to agents unredacted
}

// Error returns "category: message", prefixed with the operation when known.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Op != "" {
		return fmt.Sprintf("%s: %s: %s", e.Op, e.Category, msg)
	}
	return fmt.Sprintf("%s: %s", e.Category, msg)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of category c with a formatted message. A %w verb
// in format wraps its operand as the cause.
func Errorf(c Category, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Category: c, Message: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// WithOp returns err with op recorded, if err is an *Error without one.
func WithOp(op Op, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Op == "" {
		cp := *e
		cp.Op = op
		return &cp
	}
	return err
}

// CategoryOf returns the category of err: the first *Error in its chain, or
// timeout/canceled for context errors, or internal for anything else.
// A nil error has no category ("").
func CategoryOf(err error) Category {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Category
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Internal
}

// CallerGaveUp returns err as a canceled *Error when ctx was cancelled (the
// caller gave up: whatever failed then, such as a store call cut off, says
// nothing about the backend's health), and err unchanged otherwise. The
// cause stays in the chain, so errors.Is(result, context.Canceled) holds.
// Errors marked with ErrNotStarted keep the mark.
func CallerGaveUp(ctx context.Context, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.Canceled) || CategoryOf(err) == Canceled {
		return err
	}
	out := &Error{Category: Canceled, Message: "the caller gave up (its request was cancelled) before the operation finished",
		Err: errors.Join(context.Canceled, err)}
	var e *Error
	if errors.As(err, &e) {
		out.Op = e.Op
	}
	if errors.Is(err, ErrNotStarted) {
		return NotStarted(out)
	}
	return out
}

// MessageOf returns the agent-facing message of err without the category
// prefix.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// ErrNotStarted marks an error of an operation that the backend provably
// never started (refused, unreachable, breaker open): retrying it on another
// backend cannot apply it twice. An error without the mark may belong to an
// operation that happened (a push that timed out may have reached the
// remote). Test with errors.Is(err, ErrNotStarted).
var ErrNotStarted = errors.New("the operation was not started")

// NotStarted returns err marked with ErrNotStarted; its category and
// message are unchanged.
func NotStarted(err error) error {
	if err == nil {
		return nil
	}
	return notStarted{err}
}

type notStarted struct{ err error }

func (n notStarted) Error() string   { return n.err.Error() }
func (n notStarted) Unwrap() []error { return []error{n.err, ErrNotStarted} }
