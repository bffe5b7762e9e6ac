package local_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/backends/sandbox"
)

// TestMaxFileBytesStopsTheWriter: a command run with MaxFileBytes cannot
// make a file larger than that (RLIMIT_FSIZE, through prlimit(1) or set on
// the started process): dd writing 3 MiB leaves 1 MiB and is ended by
// SIGXFSZ (exit code -1).
func TestMaxFileBytesStopsTheWriter(t *testing.T) {
	p, info := newSandbox(t)
	out := filepath.Join(info.Root, "tmp", "big")
	res := run(t, p, info, sandbox.ExecRequest{Path: "/bin/dd", Env: []string{pathEnv},
		Args: []string{"if=/dev/urandom", "of=" + out, "bs=1M", "count=3"}, MaxFileBytes: 1 << 20})
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 1<<20 || res.ExitCode == 0 {
		t.Fatalf("dd under a 1 MiB file-size limit: exit %d, file of %d bytes; stderr %s", res.ExitCode, st.Size(), res.Stderr)
	}
	// Without the limit the same command writes it all.
	res = run(t, p, info, sandbox.ExecRequest{Path: "/bin/dd", Env: []string{pathEnv},
		Args: []string{"if=/dev/zero", "of=" + out, "bs=1M", "count=3"}})
	if st, err := os.Stat(out); err != nil || st.Size() != 3<<20 || res.ExitCode != 0 {
		t.Fatalf("dd without a limit: exit %d, %v, %v", res.ExitCode, st, err)
	}
}

// TestDiskUsageMeasuresTrees: DiskUsage sums what is allocated under each
// path, 0 for a path that does not exist, and refuses a path outside the
// sandbox.
func TestDiskUsageMeasuresTrees(t *testing.T) {
	p, info := newSandbox(t)
	dir := filepath.Join(info.Root, "ws", "a")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 512<<10)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := p.DiskUsage(t.Context(), info.ID, []string{info.Root, dir, info.Root + "/missing"})
	if err != nil {
		t.Fatal(err)
	}
	if n[1] < 512<<10 || n[1] > 600<<10 || n[0] < n[1] || n[2] != 0 {
		t.Fatalf("disk use of root, ws/a, missing: %v", n)
	}
	if _, err := p.DiskUsage(t.Context(), info.ID, []string{"/etc"}); err == nil {
		t.Fatal("DiskUsage measured a path outside the sandbox")
	}
}
