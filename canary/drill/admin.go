package drill

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
)

// AdminGateway is a Gateway over a gateway's admin listener.
type AdminGateway struct{ C *admin.Client }

var _ Gateway = AdminGateway{}

// Connect is Config.Connect for gateways reached through their admin
// listeners with token (the admin token, "" for none).
func Connect(token string) func(Target) Gateway {
	return func(t Target) Gateway { return AdminGateway{C: admin.NewClient(t.Admin, token)} }
}

// Ready reads GET /readyz.
func (a AdminGateway) Ready(ctx context.Context) error { return a.C.Ready(ctx) }

// State reads GET /status.
func (a AdminGateway) State(ctx context.Context) (State, error) {
	st, err := a.C.Status(ctx)
	if err != nil {
		return State{}, err
	}
	s := State{At: st.At, Revision: st.Revision, FailSafe: st.FailSafe, Kill: st.Kill,
		Routes: map[string]float64{}, Configured: map[string]float64{}}
	for _, o := range st.Ops {
		s.Routes[o.Op], s.Configured[o.Op] = o.Route.Effective, o.Route.Configured
		if o.LocalRollback {
			s.LocalRollbacks = append(s.LocalRollbacks, o.Op)
		}
	}
	s.Forced = slices.Sorted(maps.Keys(st.BreakersForced))
	if st.Drill != nil {
		s.DrillID = st.Drill.ID
	}
	if t := st.Traffic; t != nil {
		s.Calls, s.Failed, s.SentApproach2 = t.Calls, t.Failed, t.Approach2Sent
		if t.Approach2LastSent != nil {
			s.LastSentApproach2 = *t.Approach2LastSent
		}
	}
	return s, nil
}

// Kill sets the kill-switch override.
func (a AdminGateway) Kill(ctx context.Context, by, reason string) error {
	return a.C.SetKillOverride(ctx, by, reason)
}

// PutOverride puts ov back (nil: clears the override).
func (a AdminGateway) PutOverride(ctx context.Context, ov *flags.Override, by, reason string) error {
	if ov == nil {
		return a.C.ClearOverride(ctx, by, reason)
	}
	return a.C.SetOverride(ctx, *ov)
}

// Mark takes the drill mark.
func (a AdminGateway) Mark(ctx context.Context, id, by, reason string, ttl time.Duration) error {
	err := a.C.SetDrill(ctx, admin.DrillMarkRequest{ID: id, By: by, Reason: reason, TTL: ttl})
	if conflict, ok := errors.AsType[*admin.DrillConflict](err); ok {
		return &Busy{ID: conflict.Holder.ID, By: conflict.Holder.By, Since: conflict.Holder.Since}
	}
	return err
}

// Unmark clears the mark with the drill's verdict.
func (a AdminGateway) Unmark(ctx context.Context, id string, v Verdict, detail string) error {
	return a.C.ClearDrill(ctx, id, resultOf(v), detail)
}

// resultOf is the gateway's word for a verdict: a drill that neither
// passed nor failed was aborted.
func resultOf(v Verdict) gateway.DrillResult {
	switch v {
	case Pass:
		return gateway.DrillPass
	case Fail:
		return gateway.DrillFail
	}
	return gateway.DrillAborted
}

// ForceBreaker forces op's breaker open.
func (a AdminGateway) ForceBreaker(ctx context.Context, op, by, reason string, ttl time.Duration) error {
	return a.C.ForceBreaker(ctx, backends.Op(op), by, reason, ttl)
}

// ReleaseBreaker releases op's breaker.
func (a AdminGateway) ReleaseBreaker(ctx context.Context, op, by, reason string) error {
	return a.C.ReleaseBreaker(ctx, backends.Op(op), by, reason)
}
