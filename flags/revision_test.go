package flags

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

func fileRevision(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Revision(data)
}

// TestStatusRevisionFollowsTheFile: the revision a gateway shows is the
// SHA-256 of the flag file's bytes it applies, changes with an edit, and is
// empty while the file is invalid.
func TestStatusRevisionFollowsTheFile(t *testing.T) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	e, path, _ := open(t, f)
	first := fileRevision(t, path)
	if got := e.Status().Revision; got != first || len(got) != 64 {
		t.Fatalf("revision %q, want %q", got, first)
	}
	_ = f.SetRoute("status", 50)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	second := fileRevision(t, path)
	if second == first {
		t.Fatal("the edit did not change the file")
	}
	testkit.Eventually(t, "the edited file's revision shows", func() bool { return e.Status().Revision == second })
	if err := os.WriteFile(path, []byte(`{"flags": {"nonsense": {}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "an invalid file has no revision", func() bool { return e.Status().Revision == "" })
}

// TestStatusRevisionThroughASyncSource: a gateway following `gitgate flags
// serve` shows the revision of the served file's bytes.
func TestStatusRevisionThroughASyncSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	addr, _ := syncSource(t, path, "127.0.0.1:0")
	e := openSync(t, addr)
	want := fileRevision(t, path)
	testkit.Eventually(t, "the source's revision shows", func() bool { return e.Status().Revision == want })
	f.SetKill(true)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	want = fileRevision(t, path)
	testkit.Eventually(t, "the edited source's revision shows", func() bool { return e.Status().Revision == want })
}

// TestRecordBreaker: forcing a breaker and releasing it are change records.
func TestRecordBreaker(t *testing.T) {
	e, path, _ := open(t, NewFile(ops))
	e.RecordBreaker("push", true, "drill", "weekly drill")
	e.RecordBreaker("push", false, "drill", "weekly drill")
	changes, err := ReadChanges(ChangeLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("changes %+v", changes)
	}
	for i, want := range [][2]string{{"auto", "forced open"}, {"forced open", "auto"}} {
		c := changes[i]
		if c.Kind != ChangeBreaker || c.Op != "push" || c.By != "drill" || c.Reason != "weekly drill" || c.From != want[0] || c.To != want[1] {
			t.Errorf("change %d: %+v", i, c)
		}
	}
}
