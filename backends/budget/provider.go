package budget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/pause"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// ProviderConfig configures a Provider.
type ProviderConfig struct {
	// Interval is how often live sandboxes are charged and the spend read
	// back (metrics, WARN lines); default 30 s.
	Interval time.Duration
	// Lifetime is how long the provider lets a sandbox live without its
	// TTL being extended (E2B's timeout, sandbox.e2b.lifetime): a sandbox
	// this process stopped hearing of is charged that long at most;
	// default 1 h.
	Lifetime time.Duration
}

// Provider is a sandbox.Provider that checks the budget before every
// creation and charges the sandboxes it creates or finds while they run.
// Use Sandbox for what the manager is given: it keeps the inner
// provider's optional capabilities.
type Provider struct {
	inner  sandbox.Provider
	coster sandbox.Coster
	budget *Budget
	cfg    ProviderConfig
	mu     sync.Mutex
	live   map[string]*tracked
}

// tracked is a sandbox this process charges.
type tracked struct {
	project string
	from    time.Time // charged from here (or from its mark in the store)
	expires time.Time // the provider ends it then unless its TTL is extended
	rate    float64   // US dollars per second
}

// NewProvider decorates inner, which must bill by the second
// (sandbox.Coster) and have no optional capability the decorator does not
// pass on (sandbox.Lister, OrphanClaimer, Releaser; SecretWriter,
// DiskUser and UsageReader only all together, as E2B's provider has them).
func NewProvider(inner sandbox.Provider, b *Budget, cfg ProviderConfig) (*Provider, error) {
	coster, ok := inner.(sandbox.Coster)
	if !ok {
		return nil, fmt.Errorf("budget: sandbox provider %s does not bill sandboxes (no cost per second)", inner.Name())
	}
	_, lister := inner.(sandbox.Lister)
	_, claimer := inner.(sandbox.OrphanClaimer)
	_, releaser := inner.(sandbox.Releaser)
	_, secrets := inner.(sandbox.SecretWriter)
	_, disk := inner.(sandbox.DiskUser)
	_, usage := inner.(sandbox.UsageReader)
	if lister || claimer || releaser || secrets != disk || secrets != usage {
		return nil, fmt.Errorf("budget: sandbox provider %s has optional capabilities the budget decorator does not pass on", inner.Name())
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = time.Hour
	}
	return &Provider{inner: inner, coster: coster, budget: b, cfg: cfg, live: map[string]*tracked{}}, nil
}

// Sandbox returns p as the manager should see it: with the inner
// provider's SecretWriter, DiskUser and UsageReader when it has them.
func (p *Provider) Sandbox() sandbox.Provider {
	if _, ok := p.inner.(sandbox.SecretWriter); ok {
		return secretsAndDisk{p}
	}
	return p
}

// secretsAndDisk is p with the inner provider's SecretWriter, DiskUser and
// UsageReader.
type secretsAndDisk struct{ *Provider }

// Usage implements sandbox.UsageReader.
func (s secretsAndDisk) Usage(ctx context.Context, id string) (sandbox.Usage, error) {
	return s.inner.(sandbox.UsageReader).Usage(ctx, id)
}

// WriteSecret implements sandbox.SecretWriter.
func (s secretsAndDisk) WriteSecret(ctx context.Context, id, path string, data []byte) error {
	return s.inner.(sandbox.SecretWriter).WriteSecret(ctx, id, path, data)
}

// DiskUsage implements sandbox.DiskUser.
func (s secretsAndDisk) DiskUsage(ctx context.Context, id string, paths []string) ([]int64, error) {
	return s.inner.(sandbox.DiskUser).DiskUsage(ctx, id, paths)
}

var (
	_ sandbox.Coster        = (*Provider)(nil)
	_ sandbox.OwnerRecorder = (*Provider)(nil)
	_ sandbox.SecretWriter  = secretsAndDisk{}
	_ sandbox.DiskUser      = secretsAndDisk{}
	_ sandbox.UsageReader   = secretsAndDisk{}
)

// Name returns the inner provider's name.
func (p *Provider) Name() string { return p.inner.Name() }

// Create refuses when the owner's project's or the overall budget is
// spent (Budget.Allow), and otherwise creates and starts charging the
// sandbox.
func (p *Provider) Create(ctx context.Context, opts sandbox.CreateOptions) (sandbox.Info, error) {
	if err := p.budget.Allow(ctx, opts.Owner.Project); err != nil {
		return sandbox.Info{}, err
	}
	start := p.budget.cfg.Now()
	info, err := p.inner.Create(ctx, opts)
	if err != nil {
		return info, err
	}
	p.track(info, start)
	return info, nil
}

// Find returns the inner provider's sandboxes of owner and charges them
// (a restarted process adopts them this way): from their mark in the
// store, or from their creation when nobody charged them yet.
func (p *Provider) Find(ctx context.Context, owner sandbox.Owner) ([]sandbox.Info, error) {
	found, err := p.inner.Find(ctx, owner)
	for _, info := range found {
		p.track(info, time.Time{})
	}
	return found, err
}

// Lookup returns a sandbox by id and charges it, as Find does.
func (p *Provider) Lookup(ctx context.Context, id string) (sandbox.Info, error) {
	info, err := p.inner.Lookup(ctx, id)
	if err == nil {
		p.track(info, time.Time{})
	}
	return info, p.gone(ctx, id, err)
}

// track starts charging info's sandbox: from created when known, else
// from its creation time, else now (its mark in the store, if another
// process charged it, takes precedence).
func (p *Provider) track(info sandbox.Info, created time.Time) {
	rate := p.coster.CostPerSecond(info.ID)
	if rate <= 0 {
		return
	}
	now := p.budget.cfg.Now()
	from := created
	if from.IsZero() {
		from = info.Created
	}
	if from.IsZero() || from.After(now) {
		from = now
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.live[info.ID]; t != nil {
		t.expires = laterOf(t.expires, now.Add(p.cfg.Lifetime))
		if info.Owner.Project != "" {
			t.project = info.Owner.Project
		}
		return
	}
	p.live[info.ID] = &tracked{project: info.Owner.Project, from: from, expires: now.Add(p.cfg.Lifetime), rate: rate}
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// gone ends the charging of a sandbox the provider found gone, and
// returns err.
func (p *Provider) gone(ctx context.Context, id string, err error) error {
	if err != nil && errors.Is(err, sandbox.ErrGone) {
		p.finish(ctx, id, true)
	}
	return err
}

// Exec implements sandbox.Provider.
func (p *Provider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	res, err := p.inner.Exec(ctx, id, req)
	return res, p.gone(ctx, id, err)
}

// ReadFile implements sandbox.Provider.
func (p *Provider) ReadFile(ctx context.Context, id, root, rel string, offset, limit int64) (sandbox.FileData, error) {
	d, err := p.inner.ReadFile(ctx, id, root, rel, offset, limit)
	return d, p.gone(ctx, id, err)
}

// WriteFile implements sandbox.Provider.
func (p *Provider) WriteFile(ctx context.Context, id, root, rel string, data []byte) (bool, error) {
	created, err := p.inner.WriteFile(ctx, id, root, rel, data)
	return created, p.gone(ctx, id, err)
}

// ListDir implements sandbox.Provider.
func (p *Provider) ListDir(ctx context.Context, id, root, rel string, recursive bool, maxEntries int) ([]sandbox.Entry, error) {
	e, err := p.inner.ListDir(ctx, id, root, rel, recursive, maxEntries)
	return e, p.gone(ctx, id, err)
}

// Remove implements sandbox.Provider.
func (p *Provider) Remove(ctx context.Context, id, root, rel string) (bool, error) {
	existed, err := p.inner.Remove(ctx, id, root, rel)
	return existed, p.gone(ctx, id, err)
}

// RemoveAll implements sandbox.Provider.
func (p *Provider) RemoveAll(ctx context.Context, id, path string) error {
	return p.gone(ctx, id, p.inner.RemoveAll(ctx, id, path))
}

// SetTTL extends the sandbox's life and how long this process charges it.
func (p *Provider) SetTTL(ctx context.Context, id string, ttl time.Duration) error {
	if err := p.inner.SetTTL(ctx, id, ttl); err != nil {
		return p.gone(ctx, id, err)
	}
	p.mu.Lock()
	if t := p.live[id]; t != nil {
		t.expires = laterOf(t.expires, p.budget.cfg.Now().Add(ttl))
	}
	p.mu.Unlock()
	return nil
}

// Destroy destroys the sandbox and charges it to now, marking it ended in
// the store (no other process charges it further).
func (p *Provider) Destroy(ctx context.Context, id string) error {
	err := p.inner.Destroy(ctx, id)
	if err == nil || errors.Is(err, sandbox.ErrGone) || backends.CategoryOf(err) == backends.NotFound {
		p.finish(ctx, id, true)
	}
	return err
}

// RecordOwner passes the owner on (when the inner provider records
// owners) and charges the sandbox to the owner's project from now on: a
// warm pool's sandbox is charged to the total only until it is handed out.
func (p *Provider) RecordOwner(ctx context.Context, id string, owner sandbox.Owner) error {
	p.mu.Lock()
	t, ok := p.live[id]
	p.mu.Unlock()
	if ok && t.project != owner.Project {
		p.charge(ctx, id, t, p.budget.cfg.Now(), false)
		p.mu.Lock()
		t.project = owner.Project
		p.mu.Unlock()
	}
	if rec, ok := p.inner.(sandbox.OwnerRecorder); ok {
		return rec.RecordOwner(ctx, id, owner)
	}
	return nil
}

// CostPerSecond implements sandbox.Coster.
func (p *Provider) CostPerSecond(id string) float64 { return p.coster.CostPerSecond(id) }

// finish charges sandbox id to now and stops charging it.
func (p *Provider) finish(ctx context.Context, id string, end bool) {
	p.mu.Lock()
	t, ok := p.live[id]
	delete(p.live, id)
	p.mu.Unlock()
	if ok {
		p.charge(context.WithoutCancel(ctx), id, t, p.budget.cfg.Now(), end)
	}
}

// charge bills t to until; it reports whether the sandbox is no longer
// to be charged (another process ended it).
func (p *Provider) charge(ctx context.Context, id string, t *tracked, until time.Time, end bool) bool {
	p.mu.Lock()
	c := Charge{Sandbox: id, Project: t.project, From: t.from, Until: until, PerSecond: t.rate, End: end}
	p.mu.Unlock()
	ended, err := p.budget.Charge(ctx, c)
	if err != nil {
		p.budget.cfg.Logger.Warn("charging a sandbox's running time to the budget failed; it is charged on the next try",
			"sandbox", id, "err", err)
	}
	return ended
}

// Accrue charges every live sandbox up to now (or up to when its provider
// ended it, for one this process stopped hearing of).
func (p *Provider) Accrue(ctx context.Context) {
	now := p.budget.cfg.Now()
	type due struct {
		t       *tracked
		until   time.Time
		expired bool
	}
	p.mu.Lock()
	ids := make(map[string]due, len(p.live))
	for id, t := range p.live {
		ids[id] = due{t, now, t.expires.Before(now)}
		if t.expires.Before(now) {
			ids[id] = due{t, t.expires, true}
		}
	}
	p.mu.Unlock()
	for id, d := range ids {
		t, until, expired := d.t, d.until, d.expired
		if p.charge(ctx, id, t, until, false) || expired {
			p.mu.Lock()
			if p.live[id] == t {
				delete(p.live, id)
			}
			p.mu.Unlock()
		}
	}
}

// Run charges live sandboxes and reads the spend back every Interval
// until ctx ends. What runs after (a sandbox kept for another process) is
// charged from its mark by the process that finds it next; a sandbox
// destroyed is charged by Destroy.
func (p *Provider) Run(ctx context.Context) {
	for {
		p.Accrue(ctx)
		if _, err := p.budget.Status(ctx); err != nil && ctx.Err() == nil {
			p.budget.cfg.Logger.Warn("reading the budget's spend failed", "err", err)
		}
		if !pause.For(ctx, p.cfg.Interval) {
			return
		}
	}
}
