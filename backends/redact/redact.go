// Package redact removes secrets from text before it leaves gitgate.
//
// gitgate holds per-project git tokens and must never let one appear in logs,
// tool results, error messages, metric labels or stored records. A Redactor is
// the single redaction step applied at every such output boundary (see
// threats.md §2). It works in two layers:
//
//   - Layer A masks the exact values of registered secrets together with their
//     usual encodings: base64 (standard and URL alphabets, padded and raw) of the
//     secret, of "x-access-token:"+secret and of "<any user>:"+secret (all three
//     base64 alignments), URL query/path escaping, JSON, Go and HTML escaping.
//   - Layer B masks secrets the gateway did not inject itself, by shape: GitHub
//     and GitLab tokens, credentials in URL userinfo, Authorization headers and
//     git credential-protocol "password=" lines.
//
// Bare hex strings are never masked by pattern, so commit SHAs (40 or 64 hex
// digits) pass through untouched.
package redact

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Mask is the text that replaces every redacted secret.
const Mask = "***"

// minSecretLen is the shortest value New and Add accept as a secret. Shorter
// values ("main", "origin", a 4-digit PIN) occur in ordinary output and would
// mask common words, destroying output without protecting anything real.
const minSecretLen = 8

// Redactor replaces secrets with Mask. It is safe for concurrent use; secrets
// may be added while other goroutines redact. Create one with New: the zero
// value knows no secrets and applies only the pattern rules (Layer B).
type Redactor struct {
	mu    sync.Mutex            // serialises Add
	state atomic.Pointer[state] // immutable snapshot, read without locking
}

// New returns a Redactor that masks the given secrets. Empty values and values
// shorter than 8 bytes are ignored: they would mask common words.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add registers more secrets at run time (for example a token generated at
// start-up). Like New it ignores values shorter than 8 bytes. Redaction calls
// that start after Add returns see the new secrets.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	if next := old.with(secrets); next != old {
		r.state.Store(next)
	}
}

// String returns s with every registered secret, every encoding of one and
// every known token or credential pattern replaced by Mask. When nothing
// matches, s is returned as is.
func (r *Redactor) String(s string) string {
	spans := r.load().spans(s)
	if len(spans) == 0 {
		return s
	}
	return apply(s, spans)
}

// Bytes is String for byte slices. It always returns a new slice (nil for
// nil), never b itself.
func (r *Redactor) Bytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return []byte(r.String(string(b)))
}

// load returns the current snapshot, or an empty one for a zero Redactor.
func (r *Redactor) load() *state {
	if st := r.state.Load(); st != nil {
		return st
	}
	return emptyState
}

// apply replaces each span of s (sorted, disjoint) by Mask. Spans are clipped
// to len(s).
func apply(s string, spans []span) string {
	var b strings.Builder
	b.Grow(len(s))
	prev := 0
	for _, sp := range spans {
		if sp.start >= len(s) {
			break
		}
		b.WriteString(s[prev:sp.start])
		b.WriteString(Mask)
		prev = min(sp.end, len(s))
	}
	b.WriteString(s[prev:])
	return b.String()
}
