package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/puddle/v2"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gitgate/gitgate/backends"
)

// Sentinel causes, wrapped by the *backends.Error the journal returns; test
// with errors.Is.
var (
	// ErrFenced: Settle or Takeover changed nothing, because the entry is
	// no longer started or is claimed by a holder with a newer fence.
	ErrFenced = errors.New("journal: the entry is settled or held by a newer lock grant")
	// ErrSettled: Reconciled changed nothing, because the entry was
	// already settled.
	ErrSettled = errors.New("journal: the entry is already settled")
	// ErrInFlight: an identical operation with the same key is still
	// running (Start and StartWait return it as a Conflict).
	ErrInFlight = errors.New("journal: an identical operation with this key is still running")
	// ErrKeyReused: the key was recorded for a different request.
	ErrKeyReused = errors.New("journal: the idempotency key was used for another request")
	// ErrNotFound: no entry has the given id.
	ErrNotFound = errors.New("journal: no such entry")
)

// dbError turns a driver error into a categorised *backends.Error: an
// unreachable server is Unavailable, a passed deadline (the caller's or the
// statement timeout) is Timeout, anything else is Internal. what names the
// step that failed; the cause stays wrapped.
func dbError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case isUnreachable(err):
		return backends.Errorf(backends.Unavailable, "the journal (PostgreSQL) is unreachable: %s: %w", what, err)
	case errors.Is(err, puddle.ErrClosedPool):
		// The process is stopping: a call still running past the drain
		// timeout met the journal closed under it. Another replica serves
		// the retry.
		return backends.Errorf(backends.Unavailable, "the journal is closed (this process is stopping): %s: %w", what, err)
	case errors.Is(err, context.DeadlineExceeded) || sqlState(err) == "57014":
		return backends.Errorf(backends.Timeout, "the journal (PostgreSQL) did not answer in time: %s: %w", what, err)
	case errors.Is(err, context.Canceled):
		return backends.Errorf(backends.Unavailable, "the journal call was cancelled: %s: %w", what, err)
	}
	return internalError(what, err)
}

func internalError(what string, err error) error {
	return backends.Errorf(backends.Internal, "the journal failed to %s: %w", what, err)
}

// isUnreachable reports connection-level failures: the connection could not
// be made, broke, or the server refuses connections (shutting down,
// starting, out of slots).
func isUnreachable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	switch code := sqlState(err); {
	case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03", code == "53300":
		return true
	case code != "":
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && !ne.Timeout() {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func fencedError(id, fence int64) error {
	return &backends.Error{
		Category: backends.Conflict,
		Message:  "the journal entry was not changed: it is already settled or a newer lock holder took it over (this holder's fence is stale)",
		Err:      fmt.Errorf("%w (entry %d, fence %d)", ErrFenced, id, fence),
	}
}
