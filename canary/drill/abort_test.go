package drill

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// slowGateway is a gateway as the drill sees it through its admin
// listener, with what a real one does that matters here: it follows the
// flag file at once, its agents' calls fail while the flags' kill switch
// is on (Approach 1 failing), and it applies a kill-switch override
// request killDelay after it arrives, whether or not its client is still
// waiting (an HTTP handler does not stop because the client went away).
type slowGateway struct {
	path      string
	killDelay time.Duration
	late      sync.WaitGroup

	mu     sync.Mutex
	over   *flags.Override
	mark   string
	forced []string
	calls  int64
	failed int64
}

var _ Gateway = (*slowGateway)(nil)

func (g *slowGateway) Ready(context.Context) error { return nil }

func (g *slowGateway) State(context.Context) (State, error) {
	data, err := os.ReadFile(g.path)
	if err != nil {
		return State{}, err
	}
	f, err := flags.Load(g.path)
	if err != nil {
		return State{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls += 10
	if f.Kill() {
		g.failed += 10
	}
	kill := f.Kill() || g.over != nil && g.over.Kill
	st := State{At: time.Now(), Revision: flags.Revision(data), Routes: map[string]float64{}, Configured: map[string]float64{},
		Forced: slices.Clone(g.forced), DrillID: g.mark, Calls: g.calls, Failed: g.failed}
	st.Kill = flags.KillStatus{Effective: kill, Flags: f.Kill(), Source: flags.KillOff}
	if g.over != nil {
		ov := *g.over
		st.Kill.Override = &ov
		st.Kill.Source = flags.KillOverride
	}
	for _, op := range backends.OpNames() {
		st.Configured[op] = float64(f.Route(op)) / 100
		if !kill {
			st.Routes[op] = st.Configured[op]
		}
	}
	return st, nil
}

func (g *slowGateway) Kill(ctx context.Context, by, reason string) error {
	applied := make(chan struct{})
	g.late.Go(func() {
		time.Sleep(g.killDelay) // the request's time in the network and the handler
		g.mu.Lock()
		g.over = &flags.Override{Kill: true, By: by, Reason: reason}
		g.mu.Unlock()
		close(applied)
	})
	select {
	case <-applied:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *slowGateway) PutOverride(_ context.Context, ov *flags.Override, _, _ string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.over = ov
	return nil
}

func (g *slowGateway) Mark(_ context.Context, id, _, _ string, _ time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mark = id
	return nil
}

func (g *slowGateway) Unmark(context.Context, string, Verdict, string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mark = ""
	return nil
}

func (g *slowGateway) ForceBreaker(_ context.Context, op, _, _ string, _ time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forced = append(g.forced, op)
	return nil
}

func (g *slowGateway) ReleaseBreaker(_ context.Context, op, _, _ string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forced = slices.DeleteFunc(g.forced, func(s string) bool { return s == op })
	return nil
}

// TestAbortDuringTheOverrideLeavesNoOverride: the stop condition fires
// while the drill's override requests are on their way (the agents' calls
// fail as soon as the flag source's kill switch is on), and the gateways
// apply those requests late. The drill aborts, and every gateway ends with
// the override it had before (none), not the drill's: the drill waits for
// the answers before it restores, and puts an override back again when a
// gateway shows another.
func TestAbortDuringTheOverrideLeavesNoOverride(t *testing.T) {
	path, data := flagFile(t)
	gws := []*slowGateway{{path: path, killDelay: 500 * time.Millisecond}, {path: path, killDelay: 900 * time.Millisecond}}
	cfg := Config{FlagPath: path, Ops: backends.OpNames(), HistoryDir: t.TempDir(), LockWait: 10 * time.Second,
		MaxTimeToEffect: 10 * time.Second, Hold: 200 * time.Millisecond, Poll: 10 * time.Millisecond,
		UnreachableAfter: 10 * time.Second, MaxErrorRate: 0.05, MinCalls: 5,
		Connect: func(tg Target) Gateway {
			if tg.Name == "gw-0" {
				return gws[0]
			}
			return gws[1]
		}}
	cfg.Targets = []Target{{Name: "gw-0", Admin: "http://gw-0"}, {Name: "gw-1", Admin: "http://gw-1"}}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gws {
		g.late.Wait() // every override request has reached its gateway
	}
	if res.Verdict != Aborted || !strings.Contains(strings.Join(res.Reasons, " "), "agents' calls failed") {
		t.Fatalf("verdict %s, reasons %v", res.Verdict, res.Reasons)
	}
	for i, g := range gws {
		g.mu.Lock()
		ov, mark := g.over, g.mark
		g.mu.Unlock()
		if ov != nil || mark != "" {
			t.Errorf("gw-%d after the aborted drill: override %s, mark %q", i, overrideText(ov), mark)
		}
	}
	if now, _ := os.ReadFile(path); string(now) != string(data) {
		t.Errorf("the flag file was not put back:\n%s", now)
	}
	if !res.Restore.FlagSourceIdentical || !res.Restore.GatewaysRestored {
		t.Errorf("restore %+v: %v", res.Restore, res.Reasons)
	}
}
