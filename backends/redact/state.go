package redact

import (
	"slices"
	"strings"
)

// span is a half-open byte range [start, end) to be masked. ctx <= start is
// where the text that makes it a match begins (for "password=x" the "p"):
// the streaming Writer must never cut between ctx and end.
type span struct{ ctx, start, end int }

// state is an immutable snapshot of the registered secrets and the literal
// strings (needles) derived from them.
type state struct {
	secrets []string // accepted raw secrets, for rebuilding
	needles []string // every form to mask (raw, escaped, base64 ...), deduplicated
	finder  *finder  // searches all needles at once; nil without secrets
	maxLen  int      // length of the longest needle
	hasNL   bool     // some needle contains '\r' or '\n'
}

var emptyState = &state{}

// with returns a snapshot that also knows secrets, or st itself when none of
// them is new and long enough.
func (st *state) with(secrets []string) *state {
	all := slices.Clone(st.secrets)
	for _, s := range secrets {
		if len(s) >= minSecretLen && !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	if len(all) == len(st.secrets) {
		return st
	}
	return build(all)
}

// build derives the needles for secrets.
func build(secrets []string) *state {
	st := &state{secrets: secrets}
	seen := map[string]bool{}
	for _, s := range secrets {
		for _, v := range variants(s) {
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			st.needles = append(st.needles, v)
			st.maxLen = max(st.maxLen, len(v))
			st.hasNL = st.hasNL || strings.ContainsAny(v, "\r\n")
		}
	}
	st.finder = newFinder(st.needles)
	return st
}

// spans returns the sorted, merged ranges of s to mask: every occurrence of a
// needle (Layer A) and every pattern match (Layer B). Overlapping or adjacent
// ranges are merged, so overlapping secrets are masked as a whole.
func (st *state) spans(s string) []span {
	var out []span
	if st.finder != nil {
		out = st.finder.find(s, out)
	}
	for _, ru := range rules {
		if ru.has(s) {
			out = ru.find(s, out)
		}
	}
	return merge(out)
}

// merge sorts spans and joins overlapping or touching ones; empty spans are
// dropped.
func merge(spans []span) []span {
	if len(spans) < 2 {
		return slices.DeleteFunc(spans, func(s span) bool { return s.end <= s.start })
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	out := spans[:0]
	for _, sp := range spans {
		switch {
		case sp.end <= sp.start:
		case len(out) > 0 && sp.start <= out[len(out)-1].end:
			last := &out[len(out)-1]
			last.end, last.ctx = max(last.end, sp.end), min(last.ctx, sp.ctx)
		default:
			out = append(out, sp)
		}
	}
	return out
}
