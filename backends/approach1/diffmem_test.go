package approach1_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestDiffMemoryDoesNotDependOnOffset: a page of a long diff costs the same
// memory whatever its offset. Git's output before the offset is skipped as
// it arrives (sandbox.ExecRequest.SkipStdout), not buffered. Measured as
// bytes allocated per call, compared as a ratio.
func TestDiffMemoryDoesNotDependOnOffset(t *testing.T) {
	env := backendtest.NewEnv(t)
	ex := backendtest.NewApproach1(t, env)
	backendtest.Clone(t, ex, env, env.Agent, "big")
	// A tracked file changed and a new file, each 2 MiB of diff.
	for path, c := range map[string]string{"README.md": "x", "new.txt": "y"} {
		backendtest.Do[*backends.WriteFileResult](t, ex, env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "big"},
			Path: path, Content: strings.Repeat(strings.Repeat(c, 99)+"\n", 20<<10)})
	}
	alloc := func(offset int) (uint64, *backends.DiffResult) {
		var best uint64
		var res *backends.DiffResult
		for i := range 3 { // the least of three: other goroutines allocate too
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res = backendtest.Do[*backends.DiffResult](t, ex, env.Agent, &backends.DiffRequest{Scope: backends.Scope{Workspace: "big"},
				Page: backends.Page{Offset: offset, Limit: 4 << 10}})
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; i == 0 || n < best {
				best = n
			}
		}
		return best, res
	}
	// The changed file's diff is the first ~2.07 MB, the new file's the
	// next: each is paged near its start and far into it.
	first, p0 := alloc(0)
	inTracked, p1 := alloc(1 << 20)
	newStart, p2 := alloc(2_200_000)
	inNew, p3 := alloc(4_000_000)
	for _, p := range []*backends.DiffResult{p0, p1, p2, p3} {
		if !p.Truncated || len(p.Diff) == 0 || len(p.Diff) > 4<<10 {
			t.Fatalf("page of %d bytes, truncated %v", len(p.Diff), p.Truncated)
		}
	}
	if !strings.Contains(p1.Diff, "+xxx") || !strings.Contains(p2.Diff, "+yyy") || !strings.Contains(p3.Diff, "+yyy") {
		t.Fatalf("pages do not lie in the changed and the new file's diffs: %.40q, %.40q, %.40q", p1.Diff, p2.Diff, p3.Diff)
	}
	t.Logf("bytes allocated per diff page: changed file at 0: %d, at 1 MiB: %d; new file at 2.2 MB: %d, at 4 MB: %d", first, inTracked, newStart, inNew)
	for _, c := range []struct{ near, far uint64 }{{first, inTracked}, {newStart, inNew}} {
		if ratio := float64(c.far) / float64(c.near); ratio > 2 {
			t.Errorf("a page far into the diff allocates %.1f times what one near its start does (%d vs %d bytes)", ratio, c.far, c.near)
		}
	}
}
