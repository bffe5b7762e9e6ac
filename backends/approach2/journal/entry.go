package journal

import (
	"encoding/json"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/gitgate/gitgate/backends"
)

// State is the state of a journal entry.
type State string

// The entry states. Started is the only unsettled one.
const (
	Started   State = "started"   // recorded, running or abandoned by a crash
	Succeeded State = "succeeded" // settled with a result
	Failed    State = "failed"    // settled with an error category and message
	Unknown   State = "unknown"   // reconciliation could not tell whether it took effect
)

// Settled reports whether s is a final state.
func (s State) Settled() bool { return s == Succeeded || s == Failed || s == Unknown }

// MaxKeyLen is the longest idempotency key accepted, in bytes.
const MaxKeyLen = 255

// Key identifies an operation: idempotency keys are scoped by project and
// workspace, so tenants can neither collide with nor probe each other's keys.
type Key struct {
	Project, Workspace, IdempotencyKey string
}

// Begin describes an operation about to run.
type Begin struct {
	Key
	Op          string // the operation type: clone, pull, commit, push, branch…
	Fingerprint []byte // sha256 of the normalised request; see Fingerprint
	Fence       int64  // the workspace lock grant the operation runs under
	// Prepared is optional JSON with what recovery needs (push target sha,
	// expected old sha, ref, pinned commit dates…).
	Prepared []byte
}

// Entry is one recorded operation.
type Entry struct {
	ID int64
	Key
	Op          string
	Fingerprint []byte
	State       State
	Fence       int64
	// Prepared and Result are JSON as PostgreSQL's jsonb returns it
	// (normalised: key order and spacing may differ from what was stored).
	Prepared, Result []byte
	ErrorCategory    string
	ErrorMessage     string
	Reconciled       bool      // settled by Reconciled rather than Settle
	StartedAt        time.Time // when the entry was first recorded
	UpdatedAt        time.Time // the latest claim (start or Takeover); staleness counts from it
	SettledAt        time.Time // zero while started
	Attempts         int       // 1 + the number of Takeovers
}

// entryColumns is the column list scanEntry reads, in order.
const entryColumns = `id, project, workspace, idem_key, op, fingerprint, state, fence,
	prepared, result, error_category, error_message, reconciled, attempts,
	started_at, updated_at, settled_at`

// scanEntry reads one row of entryColumns.
func scanEntry(row pgx.Row, extra ...any) (Entry, error) {
	var e Entry
	var settled *time.Time
	dest := []any{&e.ID, &e.Project, &e.Workspace, &e.IdempotencyKey, &e.Op,
		&e.Fingerprint, &e.State, &e.Fence, &e.Prepared, &e.Result,
		&e.ErrorCategory, &e.ErrorMessage, &e.Reconciled, &e.Attempts,
		&e.StartedAt, &e.UpdatedAt, &settled}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Entry{}, err
	}
	if settled != nil {
		e.SettledAt = *settled
	}
	return e, nil
}

// validate checks a Begin before anything is recorded.
func (b Begin) validate() error {
	if err := b.Key.validate(); err != nil {
		return err
	}
	if b.Op == "" {
		return backends.Errorf(backends.Internal, "journal: the operation type is empty")
	}
	if len(b.Fingerprint) == 0 {
		return backends.Errorf(backends.Internal, "journal: the request fingerprint is empty")
	}
	return validJSON("prepared", b.Prepared)
}

func (k Key) validate() error {
	if !cleanText(k.Project) || !cleanText(k.Workspace) {
		return backends.Errorf(backends.InvalidArgument, "the project and workspace must be non-empty text without control characters")
	}
	if len(k.IdempotencyKey) > MaxKeyLen || !cleanText(k.IdempotencyKey) {
		return backends.Errorf(backends.InvalidArgument,
			"the idempotency key must be 1 to %d bytes of text without control characters (a UUID is a good choice)", MaxKeyLen)
	}
	return nil
}

// cleanText reports whether s is non-empty UTF-8 without control characters
// (PostgreSQL text cannot hold NUL or invalid UTF-8).
func cleanText(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validJSON checks optional JSON (nil is stored as NULL).
func validJSON(field string, b []byte) error {
	if b != nil && !json.Valid(b) {
		return backends.Errorf(backends.Internal, "journal: the %s value is not valid JSON", field)
	}
	return nil
}

// validSettle checks the arguments of Settle and Reconciled.
func validSettle(state State, allowed []State, result []byte) error {
	for _, s := range allowed {
		if s == state {
			return validJSON("result", result)
		}
	}
	return backends.Errorf(backends.Internal, "journal: cannot settle an entry as %q (allowed: %v)", state, allowed)
}
