package budget

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// fakeProvider is an in-memory provider billing $1 a second per sandbox.
type fakeProvider struct {
	mu   sync.Mutex
	live map[string]sandbox.Info
	n    int
}

func (f *fakeProvider) Name() string { return "fake" }
func (f *fakeProvider) Create(_ context.Context, opts sandbox.CreateOptions) (sandbox.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	info := sandbox.Info{ID: "sb-" + string(rune('a'+f.n)), Owner: opts.Owner, Root: "/r"}
	f.live[info.ID] = info
	return info, nil
}
func (f *fakeProvider) Find(context.Context, sandbox.Owner) ([]sandbox.Info, error) { return nil, nil }
func (f *fakeProvider) Lookup(_ context.Context, id string) (sandbox.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if info, ok := f.live[id]; ok {
		return info, nil
	}
	return sandbox.Info{}, backends.Errorf(backends.NotFound, "no sandbox %s", id)
}
func (f *fakeProvider) Exec(context.Context, string, sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.ExecResult{}, nil
}
func (f *fakeProvider) ReadFile(context.Context, string, string, string, int64, int64) (sandbox.FileData, error) {
	return sandbox.FileData{}, nil
}
func (f *fakeProvider) WriteFile(context.Context, string, string, string, []byte) (bool, error) {
	return true, nil
}
func (f *fakeProvider) ListDir(context.Context, string, string, string, bool, int) ([]sandbox.Entry, error) {
	return nil, nil
}
func (f *fakeProvider) Remove(context.Context, string, string, string) (bool, error) {
	return false, nil
}
func (f *fakeProvider) RemoveAll(context.Context, string, string) error     { return nil }
func (f *fakeProvider) SetTTL(context.Context, string, time.Duration) error { return nil }
func (f *fakeProvider) Destroy(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, id)
	return nil
}
func (f *fakeProvider) CostPerSecond(string) float64 { return 1 }

// fakeWithSecrets adds SecretWriter, DiskUser and UsageReader, as E2B's
// provider has.
type fakeWithSecrets struct{ *fakeProvider }

func (fakeWithSecrets) WriteSecret(context.Context, string, string, []byte) error { return nil }
func (fakeWithSecrets) DiskUsage(context.Context, string, []string) ([]int64, error) {
	return nil, nil
}
func (fakeWithSecrets) Usage(context.Context, string) (sandbox.Usage, error) {
	return sandbox.Usage{CPU: 0.5}, nil
}

// fakeLister has a capability the decorator cannot pass on.
type fakeLister struct{ *fakeProvider }

func (fakeLister) List(context.Context) ([]sandbox.Info, error) { return nil, nil }

// TestProviderChargesAndRefuses: sandboxes are charged while they run
// (before they end), a pool sandbox to the total until its owner is
// recorded, a destroyed one no further by anyone; at 100 % creation is
// refused while the existing sandbox still runs commands.
func TestProviderChargesAndRefuses(t *testing.T) {
	c := &clock{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	store := fileStore(t)
	b, _ := newTestBudget(t, c, store, nil) // $10 overall, alpha $4
	inner := &fakeProvider{live: map[string]sandbox.Info{}}
	p, err := NewProvider(inner, b, ProviderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	alpha, err := p.Create(ctx, sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	warm, err := p.Create(ctx, sandbox.CreateOptions{}) // a pool's
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(2 * time.Second)
	p.Accrue(ctx)
	spent := func(scope string) float64 {
		sp, err := store.Spent(ctx, MonthOf(c.t))
		if err != nil {
			t.Fatal(err)
		}
		return sp.ByScope[scope]
	}
	if spent("alpha") != 2 || spent(TotalScope) != 4 {
		t.Fatalf("after 2 s: alpha $%v, total $%v; want $2, $4", spent("alpha"), spent(TotalScope))
	}
	if err := p.RecordOwner(ctx, warm.ID, sandbox.Owner{Project: "beta"}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Second)
	p.Accrue(ctx)
	if spent("beta") != 1 || spent(TotalScope) != 6 {
		t.Fatalf("after the hand-out: beta $%v, total $%v; want $1, $6", spent("beta"), spent(TotalScope))
	}
	c.t = c.t.Add(time.Second) // alpha at $4: spent
	p.Accrue(ctx)
	_, err = p.Create(ctx, sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}})
	if backends.CategoryOf(err) != backends.ResourceExhausted || !strings.Contains(err.Error(), "alpha") {
		t.Fatalf("a creation for alpha at 100 %%: %v", err)
	}
	if _, err := p.Exec(ctx, alpha.ID, sandbox.ExecRequest{Path: "/bin/true"}); err != nil {
		t.Fatalf("alpha's existing sandbox: %v", err)
	}
	if _, err := p.Create(ctx, sandbox.CreateOptions{Owner: sandbox.Owner{Project: "beta"}}); err != nil {
		t.Fatalf("beta refused for alpha's budget: %v", err)
	}
	// Destroyed: charged to the end, then never again, also by another
	// process that adopted it.
	other, _ := newTestBudget(t, c, store, nil)
	q, _ := NewProvider(inner, other, ProviderConfig{})
	if _, err := q.Lookup(ctx, alpha.ID); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(500 * time.Millisecond)
	if err := p.Destroy(ctx, alpha.ID); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(10 * time.Second)
	q.Accrue(ctx)
	q.Accrue(ctx)
	if got := spent("alpha"); math.Abs(got-4.5) > 1e-9 {
		t.Fatalf("alpha $%v, want $4.50 (its 4.5 s, once)", got)
	}
}

// TestProviderLifetimeCap: a sandbox this process stopped hearing of is
// charged up to when its provider would have ended it, not forever.
func TestProviderLifetimeCap(t *testing.T) {
	c := &clock{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	store := fileStore(t)
	b, _ := newTestBudget(t, c, store, nil)
	b.cfg.MonthlyUSD = 1e9
	p, _ := NewProvider(&fakeProvider{live: map[string]sandbox.Info{}}, b, ProviderConfig{Lifetime: time.Minute})
	info, _ := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "beta"}})
	c.t = c.t.Add(30 * time.Second)
	if err := p.SetTTL(t.Context(), info.ID, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	p.Accrue(t.Context())
	p.Accrue(t.Context())
	if sp, _ := store.Spent(t.Context(), MonthOf(c.t)); sp.ByScope["beta"] != 150 {
		t.Fatalf("charged $%v, want $150 (30 s, then the 2 min TTL)", sp.ByScope["beta"])
	}
}

// TestProviderCapabilities: the decorator keeps E2B's SecretWriter,
// DiskUser and UsageReader, adds none to a provider without them, and refuses providers
// whose capabilities it would hide.
func TestProviderCapabilities(t *testing.T) {
	b, _ := newTestBudget(t, &clock{time.Now()}, fileStore(t), nil)
	plain := &fakeProvider{live: map[string]sandbox.Info{}}
	p, err := NewProvider(plain, b, ProviderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Sandbox().(sandbox.SecretWriter); ok {
		t.Fatal("a SecretWriter made up")
	}
	p, err = NewProvider(fakeWithSecrets{plain}, b, ProviderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Sandbox()
	if _, ok := s.(sandbox.SecretWriter); !ok {
		t.Fatal("SecretWriter lost")
	}
	if _, ok := s.(sandbox.DiskUser); !ok {
		t.Fatal("DiskUser lost")
	}
	if _, ok := s.(sandbox.Coster); !ok {
		t.Fatal("Coster lost")
	}
	if u, ok := s.(sandbox.UsageReader); !ok {
		t.Fatal("UsageReader lost")
	} else if got, _ := u.Usage(t.Context(), "x"); got.CPU != 0.5 {
		t.Fatalf("Usage not passed on: %+v", got)
	}
	if _, err := NewProvider(fakeLister{plain}, b, ProviderConfig{}); err == nil {
		t.Fatal("a Lister accepted")
	}
}
