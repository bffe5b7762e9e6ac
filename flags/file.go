package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/atomicfile"
)

// Backend names (backends.Approach1 and backends.Approach2).
const (
	Approach1 = backends.Approach1
	Approach2 = backends.Approach2
)

// Flag names.
const (
	KillSwitchFlag = "gitgate.kill-switch"
	routePrefix    = "gitgate.route."
	shadowPrefix   = "gitgate.shadow."
)

// RouteFlag names the flag routing op.
func RouteFlag(op string) string { return routePrefix + op }

// ShadowFlag names the flag giving op's shadow sampling rate.
func ShadowFlag(op string) string { return shadowPrefix + op }

// Stages are the canary stages, in order: the share of workspaces (per
// cent) whose op goes to Approach 2.
var Stages = []int{0, 10, 50, 100}

// File is a flagd flag file as gitgate writes it.
type File struct {
	Schema string          `json:"$schema,omitempty"`
	Flags  map[string]Flag `json:"flags"`
}

// Flag is one flagd flag.
type Flag struct {
	State          string         `json:"state"`
	Variants       map[string]any `json:"variants"`
	DefaultVariant string         `json:"defaultVariant"`
	Targeting      map[string]any `json:"targeting,omitempty"`
}

// NewFile returns the flags for ops with everything on Approach 1, no
// shadowing and the kill switch off.
func NewFile(ops []string) *File {
	f := &File{Schema: "https://flagd.dev/schema/v0/flags.json", Flags: map[string]Flag{}}
	f.SetKill(false)
	for _, op := range ops {
		_ = f.SetRoute(op, 0)
		_ = f.SetShadow(op, 0)
	}
	return f
}

// SetKill sets the kill switch.
func (f *File) SetKill(on bool) {
	def := "off"
	if on {
		def = "on"
	}
	f.Flags[KillSwitchFlag] = Flag{State: "ENABLED", Variants: map[string]any{"on": true, "off": false}, DefaultVariant: def}
}

// SetRoute sends percent of op's workspaces to Approach 2. Approach 2 is the
// first bucket, so raising percent only adds workspaces to it.
func (f *File) SetRoute(op string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("%s: percent %d is not between 0 and 100", op, percent)
	}
	a1, a2 := Approach1.String(), Approach2.String() // flagd's variants are JSON values
	flag := Flag{State: "ENABLED", Variants: map[string]any{a1: a1, a2: a2}, DefaultVariant: a1}
	if percent > 0 {
		flag.Targeting = map[string]any{"fractional": []any{
			[]any{a2, percent}, []any{a1, 100 - percent}}}
	}
	f.Flags[RouteFlag(op)] = flag
	return nil
}

// SetShadow sets the share (0 to 1) of op's calls also run in shadow.
func (f *File) SetShadow(op string, rate float64) error {
	if rate < 0 || rate > 1 {
		return fmt.Errorf("%s: shadow rate %v is not between 0 and 1", op, rate)
	}
	f.Flags[ShadowFlag(op)] = Flag{State: "ENABLED", Variants: map[string]any{"rate": rate}, DefaultVariant: "rate"}
	return nil
}

// RolledBackSummary describes a rollback (File.RollBack) in the change
// log, after the operation's name.
const RolledBackSummary = "rolled back to approach1, shadow 0%"

// RollBack sends ops back to Approach 1 and stops their shadow traffic:
// an operator (or the automatic rollback) rolling back expects Approach 2
// to get nothing.
func (f *File) RollBack(ops ...string) error {
	for _, op := range ops {
		if err := f.SetRoute(op, 0); err != nil {
			return err
		}
		if err := f.SetShadow(op, 0); err != nil {
			return err
		}
	}
	return nil
}

// Route returns the per cent of op's workspaces on Approach 2.
func (f *File) Route(op string) int {
	flag, ok := f.Flags[RouteFlag(op)]
	if !ok || flag.Targeting == nil {
		if ok && flag.DefaultVariant == Approach2.String() {
			return 100
		}
		return 0
	}
	buckets, _ := flag.Targeting["fractional"].([]any)
	for _, b := range buckets {
		if pair, _ := b.([]any); len(pair) == 2 && pair[0] == Approach2.String() {
			return toInt(pair[1])
		}
	}
	return 0
}

// Kill reports whether the kill switch is on: ENABLED, with a default
// variant of true (what the gateway applies, Evaluator.killSwitch).
func (f *File) Kill() bool {
	fl := f.Flags[KillSwitchFlag]
	on, _ := fl.Variants[fl.DefaultVariant].(bool)
	return on && fl.State == "ENABLED"
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

// Validate checks that every flag is one gitgate knows, for a known
// operation, with a sane value.
func (f *File) Validate(ops []string) error {
	if f.Flags == nil {
		return errors.New("no flags")
	}
	for name, flag := range f.Flags {
		if err := validateFlag(name, flag, ops); err != nil {
			return err
		}
	}
	return nil
}

func validateFlag(name string, flag Flag, ops []string) error {
	if _, ok := flag.Variants[flag.DefaultVariant]; !ok {
		return fmt.Errorf("%s: default variant %q is not one of its variants", name, flag.DefaultVariant)
	}
	switch {
	case name == KillSwitchFlag:
		// All or nothing, evaluated by the gateway itself (see
		// Evaluator.killSwitch): a kill switch for some workspaces only is
		// a route of 0 %.
		if len(flag.Targeting) > 0 {
			return fmt.Errorf("%s: the kill switch takes no targeting (it sends every call to Approach 1, or none)", name)
		}
		for v, val := range flag.Variants {
			if _, ok := val.(bool); !ok {
				return fmt.Errorf("%s: variant %q is not true or false", name, v)
			}
		}
		return nil
	case strings.HasPrefix(name, routePrefix) && slices.Contains(ops, strings.TrimPrefix(name, routePrefix)):
		for v, val := range flag.Variants {
			if s, _ := val.(string); !backends.Name(s).Known() {
				return fmt.Errorf("%s: variant %q routes to unknown backend %v", name, v, val)
			}
		}
		return nil
	case strings.HasPrefix(name, shadowPrefix) && slices.Contains(ops, strings.TrimPrefix(name, shadowPrefix)):
		for v, val := range flag.Variants {
			if rate, ok := val.(float64); !ok || rate < 0 || rate > 1 {
				return fmt.Errorf("%s: variant %q is not a rate between 0 and 1", name, v)
			}
		}
		return nil
	}
	return fmt.Errorf("%s: not a gitgate flag (kill switch, route or shadow of a known operation)", name)
}

// Load reads a flag file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Save writes f to path atomically (see writeAtomic).
func (f *File) Save(path string) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'))
}

// writeAtomic replaces path with data (atomicfile.Write), so that a
// watching process never reads half a file. An existing file's permissions
// are kept (a new file gets 0600).
func writeAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}
