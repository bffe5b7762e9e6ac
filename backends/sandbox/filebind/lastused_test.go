package filebind_test

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// TestListShowsLastUse: a read moves a binding's last-used time, as List
// (list_workspaces) reports it, without a write of the binding.
func TestListShowsLastUse(t *testing.T) {
	ctx := t.Context()
	put := time.Now().UTC()
	// The read comes a little later by the store's clock (a use is kept to
	// the second), not by waiting.
	read := put.Add(1500 * time.Millisecond)
	s := open(t, t.TempDir(), func() time.Time { return read })
	k := key("p", "", "w")
	if err := s.Put(ctx, sandbox.Binding{Key: k, SandboxID: "s1", Created: put, LastUsed: put}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get(ctx, k); !ok || err != nil {
		t.Fatal(ok, err)
	}
	list, err := s.List(ctx, "p")
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if lu := list[0].LastUsed; lu.Before(read.Add(-10 * time.Millisecond)) {
		t.Errorf("List shows LastUsed %v after a read at %v (stored %v)", lu, read, put)
	}
}
