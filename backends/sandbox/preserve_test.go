package sandbox_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// preserveEnv is newEnv with a Preserve hook that shelves every binding
// of the sandbox (or fails while failing is set) and a log buffer.
type preserveEnv struct {
	*env
	mu      sync.Mutex
	failing bool
	calls   []string // "<sandbox id> forced=<bool>"
	log     testkit.SyncBuffer
}

func newPreserveEnv(t *testing.T) *preserveEnv {
	t.Helper()
	e := &env{t: t, p: newProvider(t), bindings: sandbox.NewMemoryBindings(), reg: prometheus.NewRegistry(),
		clock: &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}
	pe := &preserveEnv{env: e}
	m, err := sandbox.NewManager(sandbox.ManagerConfig{
		Provider: e.p, Bindings: e.bindings, IdleTTL: ttl, Registerer: e.reg,
		Logger: slog.New(slog.NewTextHandler(&pe.log, nil)), Now: e.clock.Now,
		Preserve: pe.preserve,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	e.m = m
	return pe
}

func (pe *preserveEnv) preserve(ctx context.Context, info sandbox.Info, forced bool) error {
	pe.mu.Lock()
	pe.calls = append(pe.calls, info.ID+map[bool]string{true: " forced", false: " idle"}[forced])
	failing := pe.failing
	pe.mu.Unlock()
	if failing {
		return backends.Errorf(backends.Unavailable, "vault unwritable")
	}
	list, err := pe.bindings.List(ctx, info.Owner.Project)
	if err != nil {
		return err
	}
	for _, b := range list {
		if b.SandboxID == info.ID && b.Unsaved() != "" {
			b.SandboxID, b.Root, b.Shelf = "", "", "shelf-"+b.Key.Name
			if err := pe.bindings.Put(ctx, b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pe *preserveEnv) setFailing(v bool) { pe.mu.Lock(); pe.failing = v; pe.mu.Unlock() }

func (pe *preserveEnv) logged() string { return pe.log.String() }

// TestPreserveBeforeReap: the hook runs before an idle sandbox is
// destroyed; the bindings it shelved survive the sandbox, the others go
// with it as before.
func TestPreserveBeforeReap(t *testing.T) {
	pe := newPreserveEnv(t)
	a := pe.acquire(sandbox.Owner{Project: "p"})
	dirty := sandbox.Binding{Key: sandbox.WorkspaceKey{Project: "p", Name: "dirty"}, SandboxID: a.ID, Root: a.Root, Dirty: true}
	clean := sandbox.Binding{Key: sandbox.WorkspaceKey{Project: "p", Name: "clean"}, SandboxID: a.ID, Root: a.Root}
	for _, b := range []sandbox.Binding{dirty, clean} {
		if err := pe.bindings.Put(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	pe.clock.add(ttl)
	if n := pe.m.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("ReapIdle reaped %d, want 1", n)
	}
	if len(pe.calls) != 1 || pe.calls[0] != a.ID+" idle" {
		t.Fatalf("Preserve calls = %v, want one for %s (idle)", pe.calls, a.ID)
	}
	list, _ := pe.bindings.List(t.Context(), "p")
	if len(list) != 1 || list[0].Key.Name != "dirty" || list[0].Shelf != "shelf-dirty" || list[0].SandboxID != "" {
		t.Fatalf("bindings after reap = %+v, want only the shelved one", list)
	}
}

// TestPreserveFailureKeepsSandbox: when the work cannot be saved the idle
// sandbox stays, with its bindings and files, a WARN line and a metric,
// and is retried (and reaped) at the next reap once saving works.
func TestPreserveFailureKeepsSandbox(t *testing.T) {
	pe := newPreserveEnv(t)
	a := pe.acquire(sandbox.Owner{Project: "p"})
	b := sandbox.Binding{Key: sandbox.WorkspaceKey{Project: "p", Name: "w"}, SandboxID: a.ID, Root: a.Root, Unpushed: "main"}
	if err := pe.bindings.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(a.Root, "work")
	if err := os.WriteFile(marker, []byte("unsaved"), 0o600); err != nil {
		t.Fatal(err)
	}
	pe.setFailing(true)
	pe.clock.add(ttl)
	for range 2 {
		if n := pe.m.ReapIdle(t.Context()); n != 0 {
			t.Fatalf("ReapIdle reaped %d although the work could not be saved", n)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the kept sandbox lost its files: %v", err)
	}
	if got, ok, _ := pe.bindings.Get(t.Context(), b.Key); !ok || got.SandboxID != a.ID {
		t.Fatalf("binding after a failed preserve = %+v, %v", got, ok)
	}
	if got := pe.metric("gitgate_sandbox_preserve_failures_total", ""); got != 2 {
		t.Errorf("gitgate_sandbox_preserve_failures_total = %v, want 2", got)
	}
	if log := pe.logged(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "idle sandbox kept") || !strings.Contains(log, a.ID) {
		t.Errorf("no WARN line names the kept sandbox:\n%s", log)
	}
	pe.use(a.ID) // still usable
	pe.setFailing(false)
	pe.clock.add(ttl)
	if n := pe.m.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("ReapIdle once saving works reaped %d, want 1", n)
	}
	if got, ok, _ := pe.bindings.Get(t.Context(), b.Key); !ok || got.Shelf == "" {
		t.Fatalf("binding after the reap = %+v, %v; want it shelved", got, ok)
	}
}

// TestPreserveAtClose: Close saves (forced) before destroying, and leaves
// a sandbox whose work could not be saved running.
func TestPreserveAtClose(t *testing.T) {
	pe := newPreserveEnv(t)
	a := pe.acquire(sandbox.Owner{Project: "p"})
	pe.setFailing(true)
	pe.m.Close(t.Context())
	if len(pe.calls) != 1 || pe.calls[0] != a.ID+" forced" {
		t.Fatalf("Preserve calls = %v, want one forced for %s", pe.calls, a.ID)
	}
	if _, err := os.Stat(a.Root); err != nil {
		t.Fatalf("a sandbox whose work could not be saved was destroyed at Close: %v", err)
	}
	if log := pe.logged(); !strings.Contains(log, "left running at shutdown") {
		t.Errorf("no WARN line for the sandbox left running:\n%s", log)
	}
}

func TestDirVault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	v, err := sandbox.NewDirVault(dir, sandbox.DirVaultOptions{MaxBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("vault directory mode = %v (%v), want 0700", st.Mode().Perm(), err)
	}
	if n, err := v.Put(ctx, "k1", strings.NewReader("0123456789")); err != nil || n != 10 {
		t.Fatalf("Put = %d, %v", n, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "k1")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("entry mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
	rc, size, err := v.Get(ctx, "k1")
	if err != nil || size != 10 {
		t.Fatalf("Get = %d, %v", size, err)
	}
	data, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(data) != "0123456789" {
		t.Fatalf("Get read %q", data)
	}
	// Over the cap: refused, the old entry untouched, no temporary left.
	_, err = v.Put(ctx, "k1", strings.NewReader("0123456789x"))
	backendsWant(t, err, backends.ResourceExhausted)
	if rc, size, err := v.Get(ctx, "k1"); err != nil || size != 10 {
		t.Fatalf("an over-cap Put changed the entry: %d, %v", size, err)
	} else {
		_ = rc.Close()
	}
	_, _, err = v.Get(ctx, "absent")
	backendsWant(t, err, backends.NotFound)
	for _, bad := range []string{"", "../x", ".hidden", "a/b", strings.Repeat("a", 129)} {
		_, err := v.Put(ctx, bad, strings.NewReader("x"))
		backendsWant(t, err, backends.InvalidArgument)
	}
	if err := v.Delete(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(ctx, "k1"); err != nil {
		t.Fatalf("deleting a missing entry: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("vault directory not empty: %v", entries)
	}
}

// TestDirVaultUnwritable: a vault that cannot be written says so
// (unavailable) and stores nothing.
func TestDirVaultUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	v, err := sandbox.NewDirVault(dir, sandbox.DirVaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The directory replaced by a file: even root cannot write there.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = v.Put(t.Context(), "k", strings.NewReader("x"))
	backendsWant(t, err, backends.Unavailable)
}

func backendsWant(t *testing.T, err error, want backends.Category) {
	t.Helper()
	var be *backends.Error
	if !errors.As(err, &be) || be.Category != want {
		t.Fatalf("err = %v, want category %s", err, want)
	}
}

// TestReaperOutlivesProviderTTL: with Preserve set, an idle sandbox whose
// provider lifetime (counted from its last extension, which may precede
// its last use) would end before the reaper reaches it is extended, so
// that its work is saved before the provider could end it; it is still
// reaped once idle for the TTL.
func TestReaperOutlivesProviderTTL(t *testing.T) {
	pe := newPreserveEnv(t)
	a := pe.acquire(sandbox.Owner{Project: "p"}) // created: lifetime until TTL from now
	pe.clock.add(ttl / 8)
	pe.use(a.ID) // a use too soon after the last extension to extend again
	base := pe.p.setTTLs.Load()
	pe.clock.add(ttl / 2)
	if n := pe.m.ReapIdle(t.Context()); n != 0 || pe.p.setTTLs.Load() != base {
		t.Fatalf("half-way: reaped %d, extended %d times; want nothing", n, pe.p.setTTLs.Load()-base)
	}
	pe.clock.add(ttl/2 - ttl/8 - time.Second) // the provider's lifetime ends within the margin
	if n := pe.m.ReapIdle(t.Context()); n != 0 {
		t.Fatalf("reaped %d before the idle TTL", n)
	}
	if got := pe.p.setTTLs.Load() - base; got != 1 {
		t.Fatalf("lifetime extended %d times before the provider would end it, want 1", got)
	}
	pe.clock.add(ttl/8 + time.Second) // idle for the TTL now
	if n := pe.m.ReapIdle(t.Context()); n != 1 || len(pe.calls) != 1 {
		t.Fatalf("reaped %d with %d Preserve calls, want 1 and 1", n, len(pe.calls))
	}
}

// TestDirVaultSweep: entries older than the given age and stale
// temporaries go; recent ones and foreign files stay.
func TestDirVaultSweep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	v, err := sandbox.NewDirVault(dir, sandbox.DirVaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"old", "new"} {
		if _, err := v.Put(t.Context(), k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{".tmp-old-1": "x", ".tmp-new-1": "x", ".foreign": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-30 * 24 * time.Hour)
	for _, name := range []string{"old", ".tmp-old-1", ".foreign"} {
		if err := os.Chtimes(filepath.Join(dir, name), long, long); err != nil {
			t.Fatal(err)
		}
	}
	n, err := v.Sweep(t.Context(), 14*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".foreign .tmp-new-1 new" {
		t.Fatalf("after the sweep: %v", names)
	}
}
