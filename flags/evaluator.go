package flags

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Evaluator.
type Config struct {
	// Path is the flagd JSON flag file. Required unless SyncAddr is set.
	Path string
	// SyncAddr, instead of Path, is a flagd sync source ("host:port"): a
	// flagd server, or anything serving flagd.sync.v1.FlagSyncService,
	// that a fleet of gateways shares. Its flags are in the same format.
	SyncAddr string
	// SyncSelector picks the source's flag set (flagd's selector).
	SyncSelector string
	// Ops are the operations flags may name (for validating the file).
	Ops []string
	// OverridePath, if set, keeps the kill-switch override in this file so
	// that it survives restarts until cleared.
	OverridePath string
	// ChangeLogPath is the change log that records the override's set and
	// clear like flag changes. If empty, the flag file's (ChangeLogPath of
	// Path); with a sync source and no ChangeLogPath, override changes are
	// only logged.
	ChangeLogPath string
	// Domain is the OpenFeature domain of this evaluator's provider. If
	// empty, "gitgate".
	Domain string
	// CheckInterval is how often the file itself is checked. If zero, 250 ms.
	CheckInterval time.Duration
	Registerer    prometheus.Registerer // if nil, metrics are not registered
	Logger        *slog.Logger          // if nil, slog.Default()
}

// Decision is where one call goes.
type Decision struct {
	Backend    backends.Name // Approach1 or Approach2
	ShadowRate float64       // share of calls to mirror or predict on the other backend
	Killed     bool          // the kill switch sent it to Approach 1
	// RolledBack is set when the gateway rolled the operation back itself
	// (sync source only: see RollBackLocally).
	RolledBack bool
	// FailSafe says why the flags could not be used (the call goes to
	// Approach 1); empty when they were.
	FailSafe string
	// Stage is the route percentage (0 to 100) of the operation's
	// workspaces sent to Approach 2 that decided the call: the fractional
	// split of its route flag. 0 when the call was killed, rolled back or
	// sent to Approach 1 by the fail-safe. It is read from the flags the
	// evaluator last checked (the file every CheckInterval, or the last
	// flags the sync source sent), so for at most a CheckInterval around a
	// change it may name the stage before or after the one flagd applied.
	Stage int
}

// Override is the local kill-switch override.
type Override struct {
	Kill   bool      `json:"kill"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Evaluator answers routing questions from the flags. Safe for concurrent
// use.
type Evaluator struct {
	cfg      Config
	client   *openfeature.Client
	provider *flagd.Provider
	metrics  *prometheus.CounterVec

	override atomic.Pointer[Override]
	// overrideMu orders the override's changes: each keeps the file and
	// the override in force together, so the last change made is the one
	// in force and the one a restart reads back.
	overrideMu sync.Mutex
	fileErr    atomic.Pointer[string] // why the file cannot be used, nil when it can
	// stages are the route percentages of the file last found valid, by
	// operation (Decision.Stage); nil before one was.
	stages atomic.Pointer[map[string]int]
	// revision is Revision of the flag bytes last found valid; nil when
	// none are (Status.Revision).
	revision atomic.Pointer[string]
	// killFlag is the kill switch of the flags last found valid (the
	// file's, or the sync source's last message); nil when they have none.
	// Decide and Status read it, not the provider: see killSwitch.
	killFlag atomic.Pointer[Flag]
	ready    atomic.Bool  // the provider is serving the current file
	clientMu sync.RWMutex // guards client and provider across restarts
	stop     chan struct{}
	done     chan struct{}

	logMu  sync.Mutex
	logged map[string]time.Time

	sync *syncState // with SyncAddr
}

// Open starts evaluating the flags (a file or a sync source). A missing or
// invalid file, or an unreachable source, is not an error: every call goes
// to Approach 1 until it is usable.
func Open(ctx context.Context, cfg Config) (*Evaluator, error) {
	if (cfg.Path == "") == (cfg.SyncAddr == "") {
		return nil, errors.New("flags: Config needs either the flag file's Path or a SyncAddr")
	}
	if cfg.Domain == "" {
		cfg.Domain = "gitgate"
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ChangeLogPath == "" && cfg.Path != "" {
		cfg.ChangeLogPath = ChangeLogPath(cfg.Path)
	}
	e := &Evaluator{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}), logged: map[string]time.Time{}}
	e.metrics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_flags_failsafe_total",
		Help: "Flag evaluations that fell back to Approach 1 because the flags could not be used, by flag kind and reason.",
	}, []string{"kind", "reason"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(e.metrics)
	}
	if err := e.loadOverride(); err != nil {
		return nil, err
	}
	if cfg.SyncAddr != "" {
		if err := e.openSync(); err != nil {
			return nil, err
		}
		go e.every(e.checkSync)
		return e, nil
	}
	e.checkFile()
	go e.every(e.checkFile) // flagd keeps the last good flags when the file turns invalid, but an invalid source must mean Approach 1
	return e, nil
}

// startProvider (re)starts the flagd provider on the file. It runs when the
// file becomes usable: flagd's own watcher does not recover from a file
// that was missing when it started.
func (e *Evaluator) startProvider() {
	p, err := newFlagdProvider(e.cfg.Logger, flagd.WithFileResolver(), flagd.WithOfflineFilePath(e.cfg.Path)) // the provider's logs, zap's included, join ours, redacted
	if err == nil {
		err = openfeature.SetNamedProviderAndWait(e.cfg.Domain, p)
	}
	if err != nil {
		e.cfg.Logger.Warn("flag provider not started; every operation goes to Approach 1", "err", err)
		return
	}
	e.clientMu.Lock()
	old := e.provider
	e.provider, e.client = p, openfeature.NewClient(e.cfg.Domain)
	e.clientMu.Unlock()
	if old != nil {
		e.shutdown(old)
	}
	e.ready.Store(true)
}

// shutdownTimeout bounds a provider's Shutdown.
const shutdownTimeout = 2 * time.Second

// shutdown stops a provider, giving up after shutdownTimeout: flagd's
// provider v0.3.1 can deadlock in Shutdown when a file event arrives at the
// same moment (its Shutdown holds the lock its event loop needs, while the
// file sync waits on that loop), and a stuck provider must not hang the
// gateway's restart of the provider or its exit.
func (e *Evaluator) shutdown(p interface{ Shutdown() }) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Shutdown()
	}()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		e.cfg.Logger.Warn("flag provider did not shut down in time; abandoning it", "timeout", shutdownTimeout)
	}
}

// Close stops the evaluator.
func (e *Evaluator) Close() {
	close(e.stop)
	<-e.done
	e.closeSync()
	e.clientMu.Lock()
	defer e.clientMu.Unlock()
	if e.provider != nil {
		e.shutdown(e.provider)
	}
}

// every runs check every CheckInterval until Close.
func (e *Evaluator) every(check func()) {
	defer close(e.done)
	t := time.NewTicker(e.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			check()
		}
	}
}

// stage is op's route percentage (Decision.Stage) in the flags last
// checked: the file's, or the sync source's last flags.
func (e *Evaluator) stage(op string) int {
	if e.sync == nil {
		if m := e.stages.Load(); m != nil {
			return (*m)[op]
		}
		return 0
	}
	e.sync.mu.Lock()
	def := e.sync.routes[RouteFlag(op)]
	e.sync.mu.Unlock()
	var fl Flag
	if def == "" || json.Unmarshal([]byte(def), &fl) != nil {
		return 0
	}
	return (&File{Flags: map[string]Flag{RouteFlag(op): fl}}).Route(op)
}

func (e *Evaluator) checkFile() {
	data, err := os.ReadFile(e.cfg.Path)
	var f File
	if err == nil {
		if err = json.Unmarshal(data, &f); err != nil {
			err = fmt.Errorf("%s: %w", e.cfg.Path, err)
		}
	}
	if err == nil {
		err = f.Validate(e.cfg.Ops)
	}
	if err != nil {
		msg := err.Error()
		e.fileErr.Store(&msg)
		e.revision.Store(nil) // none is applied: every call goes to Approach 1
		e.ready.Store(false)  // reload the provider once the file is usable again
		return
	}
	e.setKillFlag(f.Flags)
	rev := Revision(data)
	e.revision.Store(&rev)
	stages := make(map[string]int, len(e.cfg.Ops))
	for _, op := range e.cfg.Ops {
		stages[op] = f.Route(op)
	}
	e.stages.Store(&stages)
	if !e.ready.Load() {
		e.startProvider()
	}
	e.fileErr.Store(nil)
}

// Decide returns where op on workspace goes. It never fails: anything that
// keeps the flags from being used sends the call to Approach 1.
func (e *Evaluator) Decide(ctx context.Context, op, workspace string) Decision {
	if ov := e.override.Load(); ov != nil && ov.Kill {
		return Decision{Backend: Approach1, Killed: true}
	}
	if e.rolledBack(op) {
		return Decision{Backend: Approach1, RolledBack: true}
	}
	if why := e.fileErr.Load(); why != nil {
		return e.failSafe("file", "invalid_source", *why)
	}
	e.clientMu.RLock()
	client := e.client
	e.clientMu.RUnlock()
	if client == nil || !e.ready.Load() {
		if e.sync != nil {
			return e.failSafe("sync", "provider_not_ready", "the flag provider is not set up")
		}
		return e.failSafe("file", "provider_not_ready", "the flag provider is not serving the file")
	}
	if e.sync != nil {
		if ok, why := e.syncServing(client); !ok {
			return e.failSafe("sync", "source_"+why, "the flag sync source is "+why)
		}
	}
	kill, problem := e.killSwitch()
	if problem != "" {
		return e.failSafe("kill", problem, "the kill switch in the flags is "+problem)
	}
	if kill {
		return Decision{Backend: Approach1, Killed: true}
	}
	evalCtx := openfeature.NewEvaluationContext(workspace, nil)
	jsonlogicMu.RLock() // see jsonlogicMu
	defer jsonlogicMu.RUnlock()
	route, err := client.StringValueDetails(ctx, RouteFlag(op), Approach1.String(), evalCtx)
	if err != nil || !backends.Name(route.Value).Known() {
		return e.failSafe("route", string(route.ErrorCode), fmt.Sprint(err, " ", route.Value))
	}
	d := Decision{Backend: backends.Name(route.Value), Stage: e.stage(op)}
	shadow, err := client.FloatValueDetails(ctx, ShadowFlag(op), 0, evalCtx)
	if err != nil {
		e.count("shadow", string(shadow.ErrorCode), err.Error())
	}
	d.ShadowRate = max(0, min(1, shadow.Value))
	return d
}

// Why the kill switch in the flags cannot be applied (killSwitch); each
// sends calls to Approach 1 by the fail-safe, as flagd's evaluation errors
// did.
const (
	killMissing  = "FLAG_NOT_FOUND"
	killDisabled = "disabled"
	killNotBool  = "TYPE_MISMATCH"
)

// setKillFlag keeps the kill switch of flags (killFlag).
func (e *Evaluator) setKillFlag(flags map[string]Flag) {
	if fl, ok := flags[KillSwitchFlag]; ok {
		e.killFlag.Store(&fl)
		return
	}
	e.killFlag.Store(nil)
}

// killSwitch is the kill switch of the flags this gateway last found
// valid, and why it cannot be applied ("" when it can). It is evaluated
// here rather than by the flagd provider, which applies each change a
// moment later through its own event pipeline (more than four seconds
// behind on a loaded machine, measured through a drill): the emergency
// switch must take effect as soon as the gateway has the flags, and
// Status must show exactly what Decide applies. It has neither targeting
// (Validate refuses it) nor anything else flagd would evaluate
// differently: its value is its default variant's, when it is ENABLED.
func (e *Evaluator) killSwitch() (on bool, problem string) {
	fl := e.killFlag.Load()
	if fl == nil {
		return false, killMissing
	}
	if fl.State != "ENABLED" {
		return false, killDisabled
	}
	v, ok := fl.Variants[fl.DefaultVariant].(bool)
	if !ok {
		return false, killNotBool
	}
	return v, ""
}

func (e *Evaluator) failSafe(kind, reason, detail string) Decision {
	e.count(kind, reason, detail)
	return Decision{Backend: Approach1, FailSafe: kind + ": " + reason}
}

// count records a fail-safe evaluation, and logs it at most every 30 s per
// kind and reason.
func (e *Evaluator) count(kind, reason, detail string) {
	if reason == "" {
		reason = "error"
	}
	e.metrics.WithLabelValues(kind, reason).Inc()
	key := kind + "/" + reason
	e.logMu.Lock()
	last := e.logged[key]
	now := time.Now()
	if now.Sub(last) >= 30*time.Second {
		e.logged[key] = now
	}
	e.logMu.Unlock()
	if now.Sub(last) >= 30*time.Second {
		e.cfg.Logger.Warn("flags unusable; sending operations to Approach 1", "kind", kind, "reason", reason, "detail", detail)
	}
}

// SetOverride engages (kill true) or records the local kill-switch
// override; it works whatever state the flags are in. The change is
// recorded in the change log (a kind "override" record); a change log
// that cannot be written does not stop the override, and is logged.
func (e *Evaluator) SetOverride(ov Override) error {
	e.overrideMu.Lock()
	defer e.overrideMu.Unlock()
	ov.At = time.Now().UTC()
	if e.cfg.OverridePath != "" {
		data, _ := json.Marshal(ov)
		if err := writeAtomic(e.cfg.OverridePath, data); err != nil {
			return fmt.Errorf("keep the override in %s: %w", e.cfg.OverridePath, err)
		}
	}
	old := e.override.Swap(&ov)
	e.cfg.Logger.Warn("kill-switch override set", "kill", ov.Kill, "by", ov.By, "reason", ov.Reason)
	e.recordOverride(ov.At, ov.By, ov.Reason, old, &ov)
	return nil
}

// ClearOverride removes the local override; the flags decide again. The
// change is recorded in the change log as SetOverride's is.
func (e *Evaluator) ClearOverride(by, reason string) error {
	e.overrideMu.Lock()
	defer e.overrideMu.Unlock()
	if e.cfg.OverridePath != "" {
		if err := os.Remove(e.cfg.OverridePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	old := e.override.Swap(nil)
	e.cfg.Logger.Warn("kill-switch override cleared", "by", by, "reason", reason)
	e.recordOverride(time.Now().UTC(), by, reason, old, nil)
	return nil
}

// overrideChangeLogWait bounds how long an override change waits for the
// change log's lock: the override itself is already in force.
const overrideChangeLogWait = 2 * time.Second

func overrideText(ov *Override) string {
	switch {
	case ov == nil:
		return "none"
	case ov.Kill:
		return "kill on"
	}
	return "kill off"
}

// recordOverride appends the override's change to the change log.
func (e *Evaluator) recordOverride(at time.Time, by, reason string, from, to *Override) {
	if e.cfg.ChangeLogPath == "" {
		return
	}
	rec := Change{At: at, By: by, Reason: reason, Kind: ChangeOverride, Op: AllOps, From: overrideText(from), To: overrideText(to),
		Summary: "kill-switch override " + overrideText(to) + " (admin listener)"}
	if err := AppendChanges(e.cfg.ChangeLogPath, overrideChangeLogWait, rec); err != nil {
		e.cfg.Logger.Error("the kill-switch override changed, but the change log could not be written", "err", err)
	}
}

// Revision is the revision (hex SHA-256) of flag bytes data, as
// Status.Revision shows it for the flags a gateway applies.
func Revision(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Values of a breaker record (RecordBreaker).
const (
	breakerAuto   = "auto"
	breakerForced = "forced open"
)

// RecordBreaker appends to the change log (when the evaluator has one)
// that op's Approach 2 breaker was forced open on this gateway (forced
// true) or released, by whom and why. A change log that cannot be written
// is logged: the breaker has changed already.
func (e *Evaluator) RecordBreaker(op string, forced bool, by, reason string) {
	if e.cfg.ChangeLogPath == "" {
		return
	}
	rec := Change{At: time.Now().UTC(), By: by, Reason: reason, Kind: ChangeBreaker, Op: op, From: breakerAuto, To: breakerForced,
		Summary: op + ": approach2 breaker forced open (admin listener)"}
	if !forced {
		rec.From, rec.To, rec.Summary = breakerForced, breakerAuto, op+": approach2 breaker released (admin listener)"
	}
	if err := AppendChanges(e.cfg.ChangeLogPath, overrideChangeLogWait, rec); err != nil {
		e.cfg.Logger.Error("a breaker was forced or released, but the change log could not be written", "op", op, "err", err)
	}
}

// CurrentOverride returns the override in force, if any.
func (e *Evaluator) CurrentOverride() (Override, bool) {
	if ov := e.override.Load(); ov != nil {
		return *ov, true
	}
	return Override{}, false
}

func (e *Evaluator) loadOverride() error {
	if e.cfg.OverridePath == "" {
		return nil
	}
	ov, ok, err := ReadOverride(e.cfg.OverridePath)
	if err != nil || !ok {
		return err
	}
	e.override.Store(&ov)
	return nil
}

// OverridePath is where the kill-switch override of gateways reading the
// flag file at flagPath is kept when flags.override_path is not set.
func OverridePath(flagPath string) string { return flagPath + ".override.json" }

// ReadOverride reads the kill-switch override kept at path (see
// Config.OverridePath); ok is false when there is none.
func ReadOverride(path string) (ov Override, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Override{}, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &ov)
	}
	if err != nil {
		return Override{}, false, fmt.Errorf("flags: kill-switch override %s is unreadable: %w", path, err)
	}
	return ov, true, nil
}
