package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/flags"
)

// Config configures a drill.
type Config struct {
	// FlagPath is the flag file the gateways follow, directly or through
	// `gitgate flags serve`. Required.
	FlagPath string
	// Ops are the operations a valid flag file names. Required.
	Ops []string
	// Targets are the gateways to drill. Required, unless Discover is set.
	Targets []Target
	// Discover, instead of Targets, finds the gateways by DNS when the
	// drill starts; a resolution that fails or finds none refuses the
	// drill, with nothing changed.
	Discover *Discovery
	// Connect returns the admin client of a target. Required.
	Connect func(Target) Gateway
	// Probe, if set, makes the drill agent's probe calls through each
	// target's MCP endpoint.
	Probe *ProbeConfig
	// Services are Approach 2 services' metrics URLs: their own count of
	// operations received must not move while the kill switch is on.
	Services []string
	// BreakerOp is the operation whose breaker the drill forces open. If
	// empty, the probe's operation, or status.
	BreakerOp string
	// By and Reason are recorded with every change (change log, ledger).
	By, Reason string
	// MaxTimeToEffect: a gateway slower than this to stop routing to
	// Approach 2 fails the drill. Default 5 s.
	MaxTimeToEffect time.Duration
	// Hold is how long the kill switch stays on once every gateway
	// applies it, and how long the breaker stays forced. Default 5 s.
	Hold time.Duration
	// Poll is how often gateways are asked for their state while a change
	// takes effect. Default 20 ms.
	Poll time.Duration
	// UnreachableAfter: a gateway that has not answered for this long
	// stops the drill. Default 3 s.
	UnreachableAfter time.Duration
	// MaxErrorRate stops the drill when agents' calls fail above it, once
	// MinCalls calls were made during the drill. Defaults 5 % and 20.
	MaxErrorRate float64
	MinCalls     int64
	// HistoryDir keeps the results, the snapshot of a drill under way
	// and the lock. Required.
	HistoryDir string
	// DryRun: preflight only; change nothing.
	DryRun bool
	// Progress, if set, gets a line per step, for people.
	Progress io.Writer
	Logger   *slog.Logger
	// LockWait bounds the wait for the flag change log's lock.
	LockWait time.Duration
}

func (c *Config) defaults() {
	if c.MaxTimeToEffect <= 0 {
		c.MaxTimeToEffect = 5 * time.Second
	}
	if c.Hold <= 0 {
		c.Hold = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 20 * time.Millisecond
	}
	if c.UnreachableAfter <= 0 {
		c.UnreachableAfter = 3 * time.Second
	}
	if c.MaxErrorRate <= 0 {
		c.MaxErrorRate = 0.05
	}
	if c.MinCalls <= 0 {
		c.MinCalls = 20
	}
	if c.BreakerOp == "" {
		c.BreakerOp = "status"
		if c.Probe != nil && c.Probe.Op != "" {
			c.BreakerOp = c.Probe.Op
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.By == "" {
		c.By = "gitgate drill"
	}
	if c.Reason == "" {
		c.Reason = "weekly drill"
	}
}

// markTTL is how long a drill's mark (and a forced breaker) outlives a
// drill that died: long enough for any drill, short enough that a crashed
// one does not keep others out for long.
func (c *Config) markTTL() time.Duration {
	return 4*c.MaxTimeToEffect + 3*c.Hold + 2*time.Minute
}

func (c *Config) validate() error {
	switch {
	case c.FlagPath == "":
		return errors.New("drill: no flag source: set drill.flag_file or flags.path")
	case len(c.Targets) == 0 && c.Discover == nil:
		return errors.New("drill: no gateways: set drill.gateways (their admin URLs) or drill.discover")
	case len(c.Targets) > 0 && c.Discover != nil:
		return errors.New("drill: set drill.gateways or drill.discover, not both")
	case c.Discover != nil && (c.Discover.Name == "" || c.Discover.AdminPort <= 0):
		return errors.New("drill: discovery needs drill.discover.dns and drill.discover.admin_port")
	case c.HistoryDir == "":
		return errors.New("drill: no history directory: set drill.history_dir")
	case c.Connect == nil:
		return errors.New("drill: Config.Connect is required")
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if t.Name == "" || t.Admin == "" {
			return fmt.Errorf("drill: gateway %q needs a name and an admin URL", t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("drill: gateway name %q is used twice", t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// run is one drill under way.
type run struct {
	cfg    Config
	res    *Result
	snap   *Snapshot
	gws    []Gateway
	before []State
	probe  *probeSetup
	// flipped are the flag file's bytes after the drill's flip.
	flipped []byte
	// mu guards res's lists and counts, which the gateways' goroutines
	// add to.
	mu sync.Mutex
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
}

func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Reasons = append(r.res.Reasons, fmt.Sprintf(format, args...))
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(format, args...))
}

// NewID names a drill that starts at t.
func NewID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// Run drills the gateways of cfg and returns the result, which it has
// saved in the history directory (except a refusal by the lock or the
// configuration). The error is for what kept the drill from producing a
// result at all; a failing drill is a Result with Verdict Fail.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	unlock, err := lockHistory(cfg.HistoryDir)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	start := time.Now().UTC()
	r := &run{cfg: cfg, res: &Result{ID: NewID(start), Start: start, By: cfg.By, Reason: cfg.Reason,
		FlagSource: cfg.FlagPath, Limits: Limits{MaxTimeToEffectMS: ms(cfg.MaxTimeToEffect), HoldMS: ms(cfg.Hold),
			MaxErrorRate: cfg.MaxErrorRate, MinCalls: cfg.MinCalls}}}
	if r.discover(ctx) {
		for _, t := range r.cfg.Targets {
			r.gws = append(r.gws, cfg.Connect(t))
			r.res.Gateways = append(r.res.Gateways, GatewayResult{Name: t.Name, Admin: t.Admin})
		}
		r.res.Verdict = r.drill(ctx)
	} else {
		r.res.Verdict = Refused
	}
	r.res.End = time.Now().UTC()
	if r.res.Verdict == Refused && len(r.res.Reasons) == 0 {
		r.fail("refused")
	}
	if _, _, err := (History{Dir: cfg.HistoryDir}).Save(*r.res); err != nil {
		return *r.res, fmt.Errorf("drill: keep the result: %w", err)
	}
	return *r.res, nil
}

// discover finds the gateways by DNS, when the configuration says so. It
// reports false, with the reason in the result, when there is none to
// drill.
func (r *run) discover(ctx context.Context) bool {
	d := r.cfg.Discover
	if d == nil {
		return true
	}
	r.res.Discovery = d.Name
	targets, err := d.Targets(ctx)
	if err != nil {
		r.fail("no gateway to drill: %v", err)
		return false
	}
	r.cfg.Targets = targets
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	r.say("discovery: %s resolved to %d gateways: %s", d.Name, len(targets), strings.Join(names, " "))
	return true
}

// drill runs the phases and returns the verdict.
func (r *run) drill(ctx context.Context) Verdict {
	if !r.preflight(ctx) {
		return Refused
	}
	if r.cfg.DryRun {
		r.plan()
		return DryRun
	}
	if !r.takeMarks(ctx) {
		return Refused
	}
	if err := saveSnapshot(r.cfg.HistoryDir, r.snap); err != nil {
		r.fail("could not save the snapshot before changing anything: %v", err)
		r.releaseMarks(context.WithoutCancel(ctx), Refused, "could not save the snapshot")
		return Refused
	}
	r.say("snapshot saved: %s", filepath.Join(r.cfg.HistoryDir, snapshotFile))
	watched, stop := r.watch(ctx)
	aborted := r.flipAndHold(watched)
	if !aborted {
		aborted = context.Cause(watched) != nil
	}
	rctx := context.WithoutCancel(ctx)
	r.restore(rctx)
	if !aborted && watched.Err() == nil {
		r.breakerCheck(watched)
		aborted = context.Cause(watched) != nil
	}
	cause := context.Cause(watched)
	stop()
	r.releaseBreaker(rctx)
	r.final(rctx)
	verdict := Pass
	switch {
	case aborted && cause != nil:
		r.fail("stopped: %v", cause)
		verdict = Aborted
	case len(r.res.Reasons) > 0:
		verdict = Fail
	}
	detail := ""
	if len(r.res.Reasons) > 0 {
		detail = r.res.Reasons[0]
	}
	r.releaseMarks(rctx, verdict, detail)
	if r.res.Restore.FlagSourceIdentical && r.res.Restore.GatewaysRestored {
		if err := removeSnapshot(r.cfg.HistoryDir); err != nil {
			r.note("the snapshot could not be removed: %v", err)
		}
	} else {
		r.note("the snapshot is kept in %s: `gitgate drill --recover` puts it back", filepath.Join(r.cfg.HistoryDir, snapshotFile))
	}
	return verdict
}

// plan says, on a dry run, what the drill would do.
func (r *run) plan() {
	r.note("would set the kill switch in %s and measure each gateway (limit %s)", r.cfg.FlagPath, r.cfg.MaxTimeToEffect)
	r.note("would set the kill-switch override on %d gateways, hold %s, put both back", len(r.gws), r.cfg.Hold)
	r.note("would force the %s breaker open on every gateway for %s, then release it", r.cfg.BreakerOp, r.cfg.Hold)
	if r.probe != nil {
		r.note("would probe with %s on workspace %s (routed to %s before the flip)", r.probe.op, r.probe.workspace, r.probe.routed)
	}
	for _, n := range r.res.Notes {
		r.say("dry run: %s", n)
	}
}

// lockHistory takes the drill lock of this machine (an flock on
// <dir>/drill.lock): a second drill here is refused at once.
func lockHistory(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("drill: history directory: %w", err)
	}
	path := filepath.Join(dir, "drill.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("drill: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("drill: another drill is running on this machine (%s holds %s)", strings.TrimSpace(string(holder)), path)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	return func() { _ = f.Truncate(0); f.Close() }, nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msPtr(d time.Duration) *float64 { v := ms(d); return &v }

// each runs fn for every gateway at once and waits.
func (r *run) each(fn func(i int, g Gateway)) {
	var wg sync.WaitGroup
	for i, g := range r.gws {
		wg.Go(func() { fn(i, g) })
	}
	wg.Wait()
}

// edit is the drill's edit of the flag file.
func (r *run) edit(summary string) flags.Edit {
	return flags.Edit{By: r.cfg.By, Reason: r.cfg.Reason + " " + r.res.ID, Summary: summary, Ops: r.cfg.Ops, LockWait: r.cfg.LockWait}
}
