package flags

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
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

// BenchmarkChangeApplies is how long a flag change takes to reach routing
// decisions: from the flag file saved to Decide answering by it, with the
// file watched in process (File) and through a sync source (Sync). The
// figure behind "running gateways apply it within a second" (gitgate kill,
// gitgate canary); tests only wait for it, with generous deadlines, so that
// a loaded machine never fails them. worst-ms is the slowest change.
func BenchmarkChangeApplies(b *testing.B) {
	for _, source := range []string{"File", "Sync"} {
		b.Run(source, func(b *testing.B) {
			f := NewFile(ops)
			path := filepath.Join(b.TempDir(), "flags.json")
			if err := f.Save(path); err != nil {
				b.Fatal(err)
			}
			var e *Evaluator
			if source == "File" {
				var err error
				if e, err = Open(b.Context(), Config{Path: path, Ops: ops, Domain: b.Name(), Logger: slog.New(slog.DiscardHandler)}); err != nil {
					b.Fatal(err)
				}
				defer e.Close()
			} else {
				addr, _ := syncSource(b, path, "127.0.0.1:0")
				e = openSync(b, addr)
			}
			applied := func(want backends.Name) time.Duration {
				start := time.Now()
				for e.Decide(b.Context(), "push", "p/w").Backend != want {
					if time.Since(start) > time.Minute {
						b.Fatalf("a change to %s did not apply within a minute", want)
					}
					time.Sleep(time.Millisecond)
				}
				return time.Since(start)
			}
			applied(Approach1) // the source is up
			var worst time.Duration
			n := 0
			for b.Loop() {
				n++
				want := []backends.Name{Approach1, Approach2}[n%2]
				_ = f.SetRoute("push", map[backends.Name]int{Approach1: 0, Approach2: 100}[want])
				if err := f.Save(path); err != nil {
					b.Fatal(err)
				}
				worst = max(worst, applied(want))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
