package flags

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
)

// BenchmarkDecide is the per-call cost of routing: kill switch, route and
// shadow rate evaluated in process by flagd.
func BenchmarkDecide(b *testing.B) {
	f := NewFile(ops)
	_ = f.SetRoute("status", 10)
	_ = f.SetShadow("status", 0.1)
	path := filepath.Join(b.TempDir(), "flags.json")
	if err := f.Save(path); err != nil {
		b.Fatal(err)
	}
	e, err := Open(b.Context(), Config{Path: path, Ops: ops, Domain: b.Name(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if d := e.Decide(b.Context(), "status", fmt.Sprintf("p/ws-%d", i%1000)); d.FailSafe != "" {
			b.Fatal(d.FailSafe)
		}
	}
}
