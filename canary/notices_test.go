package canary

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestNoticesAreVolatile: a notice belongs to the call that got it (the
// primary restored a shelved workspace, the shadow then found it
// restored), not a difference between the backends.
func TestNoticesAreVolatile(t *testing.T) {
	a := &backends.StatusResult{Served: backends.Served{Backend: "approach1", Notices: []string{"restored"}}, Branch: "main", Entries: []backends.StatusEntry{}}
	b := &backends.StatusResult{Served: backends.Served{Backend: "approach2"}, Branch: "main", Entries: []backends.StatusEntry{}}
	if d, err := Compare(a, b); err != nil || d != "" {
		t.Fatalf("results differing only in notices: %q %v", d, err)
	}
}
