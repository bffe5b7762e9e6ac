package drill

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/flags"
)

// Target is one gateway to drill: its name in results, its admin listener
// and, for the drill agent's probe calls, its MCP endpoint.
type Target struct {
	Name  string
	Admin string // admin listener URL (scheme://host:port)
	MCP   string // MCP endpoint URL; "" without probes
	// MCPHost is the Host header of the MCP calls; "" for MCP's host.
	MCPHost string
}

// Gateway is what the drill needs of a gateway's admin listener
// (AdminGateway over gateway/admin's client).
type Gateway interface {
	// Ready says why the gateway cannot serve traffic (nil: it can).
	Ready(ctx context.Context) error
	// State is the routing state the gateway applies now.
	State(ctx context.Context) (State, error)
	// Kill sets the kill-switch override.
	Kill(ctx context.Context, by, reason string) error
	// PutOverride puts an override back as it was; nil clears it.
	PutOverride(ctx context.Context, ov *flags.Override, by, reason string) error
	// Mark takes the drill mark (the fleet-wide lock) for ttl; another
	// drill's mark is an error that errors.As to *Busy.
	Mark(ctx context.Context, id, by, reason string, ttl time.Duration) error
	// Unmark clears the mark with the drill's verdict.
	Unmark(ctx context.Context, id string, v Verdict, detail string) error
	// ForceBreaker forces op's Approach 2 breaker open for ttl;
	// ReleaseBreaker releases it.
	ForceBreaker(ctx context.Context, op, by, reason string, ttl time.Duration) error
	ReleaseBreaker(ctx context.Context, op, by, reason string) error
}

// Busy is another drill's mark on a gateway.
type Busy struct {
	ID, By string
	Since  time.Time
}

func (b *Busy) Error() string {
	return fmt.Sprintf("another drill (%s by %s since %s) holds the drill mark", b.ID, b.By, b.Since.Format(time.RFC3339))
}

// State is what a gateway applies, as the drill reads it from /status.
type State struct {
	// At is the gateway's clock when it answered.
	At       time.Time
	Revision string // flags.Revision of the flags it applies
	FailSafe string
	Kill     flags.KillStatus
	// Routes are each operation's effective share on Approach 2, and
	// Configured its share in the flags.
	Routes, Configured map[string]float64
	LocalRollbacks     []string
	Forced             []string // operations whose breaker is forced open
	DrillID            string   // the drill mark's id, "" without one
	// Traffic: the gateway's counters since it started.
	Calls, Failed, SentApproach2 int64
	LastSentApproach2            time.Time
}

// Killed reports whether the gateway sends no new call to Approach 2: the
// kill switch is effective and every operation's effective share is 0.
func (s State) Killed() bool {
	if !s.Kill.Effective {
		return false
	}
	for _, r := range s.Routes {
		if r != 0 {
			return false
		}
	}
	return true
}

// sameRouting lists how s differs from before in what the drill may
// change: the kill switch and its override, the shares configured and
// effective, local rollbacks, forced breakers and the drill mark.
func sameRouting(before, s State) []string {
	var d []string
	if s.Kill.Effective != before.Kill.Effective || s.Kill.Flags != before.Kill.Flags {
		d = append(d, fmt.Sprintf("kill switch effective %v (flags %v), before %v (flags %v)", s.Kill.Effective, s.Kill.Flags, before.Kill.Effective, before.Kill.Flags))
	}
	if ov, was := overrideText(s.Kill.Override), overrideText(before.Kill.Override); ov != was {
		d = append(d, "override "+ov+", before "+was)
	}
	if !maps.Equal(s.Routes, before.Routes) {
		d = append(d, "effective routes "+routesText(s.Routes)+", before "+routesText(before.Routes))
	}
	if !maps.Equal(s.Configured, before.Configured) {
		d = append(d, "configured routes "+routesText(s.Configured)+", before "+routesText(before.Configured))
	}
	if !slices.Equal(s.LocalRollbacks, before.LocalRollbacks) {
		d = append(d, fmt.Sprintf("local rollbacks %v, before %v", s.LocalRollbacks, before.LocalRollbacks))
	}
	if !slices.Equal(s.Forced, before.Forced) {
		d = append(d, fmt.Sprintf("breakers forced open %v, before %v", s.Forced, before.Forced))
	}
	if s.DrillID != before.DrillID {
		d = append(d, fmt.Sprintf("drill mark %q, before %q", s.DrillID, before.DrillID))
	}
	return d
}

func overrideText(ov *flags.Override) string {
	switch {
	case ov == nil:
		return "none"
	case ov.Kill:
		return "kill on (by " + ov.By + ": " + ov.Reason + ")"
	}
	return "kill off (by " + ov.By + ": " + ov.Reason + ")"
}

func routesText(m map[string]float64) string {
	var b strings.Builder
	for i, op := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%g%%", op, m[op]*100)
	}
	return b.String()
}
