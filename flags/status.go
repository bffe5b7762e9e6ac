package flags

import (
	"encoding/json"
	"time"
)

// KillSource says what holds the kill switch on.
type KillSource string

// Kill-switch sources.
const (
	KillOff      KillSource = "none"     // the kill switch is off
	KillFlags    KillSource = "flags"    // the flag file or sync source
	KillOverride KillSource = "override" // this gateway's admin override
	KillBoth     KillSource = "both"     // both
)

// KillStatus is the kill switch as this gateway applies it.
type KillStatus struct {
	// Effective: every call goes to Approach 1.
	Effective bool `json:"effective"`
	// Flags is the kill switch in the flags (file or sync source).
	Flags bool `json:"flags"`
	// Override is the admin listener's override in force, if any.
	Override *Override `json:"override,omitempty"`
	// Source is what holds it on.
	Source KillSource `json:"source"`
}

// Share is a share as configured in the flags and as this gateway applies
// it (after the kill switch, local rollbacks and unusable flags).
type Share struct {
	Configured float64 `json:"configured"`
	Effective  float64 `json:"effective"`
}

// OpStatus is one operation's routing.
type OpStatus struct {
	Op string `json:"op"`
	// Route is the share (0 to 1) of the operation's workspaces on
	// Approach 2.
	Route Share `json:"route_approach2"`
	// Shadow is the share (0 to 1) of its calls shadowed on the other
	// backend.
	Shadow Share `json:"shadow"`
	// LocalRollback: this gateway rolled it back itself (sync source
	// only; with a file, rollback edits the file).
	LocalRollback bool `json:"local_rollback"`
}

// Status is the routing state this gateway applies.
type Status struct {
	At time.Time `json:"at"`
	// Source is "file" or "sync".
	Source string     `json:"source"`
	Kill   KillStatus `json:"kill_switch"`
	// FailSafe says why the flags cannot be used (every call goes to
	// Approach 1); empty when they can.
	FailSafe string     `json:"fail_safe,omitempty"`
	Ops      []OpStatus `json:"ops"`
	// Revision is the hex SHA-256 of the exact flag bytes this gateway last
	// found valid and applies (the file as read, or the flags the sync
	// source sent); "" when it has none. A gateway that follows the
	// flag source shows Revision(the source's bytes).
	Revision string `json:"flags_revision"`
}

// Status returns the routing state the evaluator applies now, for every
// operation of Config.Ops. With a flag file it reads the file, which the
// evaluator follows within its CheckInterval.
func (e *Evaluator) Status() Status {
	st := Status{At: time.Now().UTC(), Source: "file"}
	f, failSafe := e.current()
	if e.sync != nil {
		st.Source = "sync"
	}
	st.FailSafe = failSafe
	if rev := e.revision.Load(); rev != nil {
		st.Revision = *rev
	}
	if ov, ok := e.CurrentOverride(); ok {
		st.Kill.Override = &ov
	}
	st.Kill.Flags = f != nil && f.Kill()
	// The kill switch in force is the one Decide applies (killSwitch); a
	// kill switch it cannot apply sends every call to Approach 1 by the
	// fail-safe, as Decide does.
	applied, problem := e.killSwitch()
	applied = applied && problem == ""
	if problem != "" && failSafe == "" && f != nil {
		failSafe = "kill: " + problem
		st.FailSafe = failSafe
	}
	ovKill := st.Kill.Override != nil && st.Kill.Override.Kill
	switch {
	case ovKill && applied:
		st.Kill.Source = KillBoth
	case ovKill:
		st.Kill.Source = KillOverride
	case applied && failSafe == "":
		st.Kill.Source = KillFlags
	default:
		st.Kill.Source = KillOff
	}
	st.Kill.Effective = st.Kill.Source != KillOff
	for _, op := range e.cfg.Ops {
		o := OpStatus{Op: op, LocalRollback: e.rolledBack(op)}
		if f != nil {
			o.Route.Configured = float64(f.Route(op)) / 100
			o.Shadow.Configured = max(0, min(1, f.Shadow(op)))
		}
		if !st.Kill.Effective && !o.LocalRollback && failSafe == "" {
			o.Route.Effective, o.Shadow.Effective = o.Route.Configured, o.Shadow.Configured
		}
		st.Ops = append(st.Ops, o)
	}
	return st
}

// current returns the flags the evaluator serves (nil when it has none)
// and, when they cannot be used, why.
func (e *Evaluator) current() (*File, string) {
	if e.sync == nil {
		f, err := Load(e.cfg.Path)
		if err == nil {
			err = f.Validate(e.cfg.Ops)
		}
		if err != nil {
			return nil, "file: " + err.Error()
		}
		if why := e.fileErr.Load(); why != nil {
			return f, "file: " + *why
		}
		if !e.ready.Load() {
			return f, "file: the flag provider is not serving the file"
		}
		return f, ""
	}
	e.sync.mu.Lock()
	f := &File{Flags: map[string]Flag{}}
	for name, def := range e.sync.routes {
		var fl Flag
		if json.Unmarshal([]byte(def), &fl) == nil {
			f.Flags[name] = fl
		}
	}
	e.sync.mu.Unlock()
	e.clientMu.RLock()
	client := e.client
	e.clientMu.RUnlock()
	if client == nil || !e.ready.Load() {
		return f, "sync: the flag provider is not set up"
	}
	if ok, why := e.syncServing(client); !ok {
		return f, "sync: the flag sync source is " + why
	}
	return f, ""
}
