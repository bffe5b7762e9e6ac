package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTimeoutsAndUnavailabilityTripTheBreaker: what a silent partition
// looks like to the router (reads timing out by the client's deadline,
// then failing as unavailable while the link is re-established) opens the
// breaker after its consecutive failures; every read falls back meanwhile,
// and once it is open reads fall back without reaching Approach 2, as
// never started.
func TestTimeoutsAndUnavailabilityTripTheBreaker(t *testing.T) {
	a1, a2 := &scripted{}, &scripted{}
	r := newCanaryRouter(t, a1, a2, "approach2") // trips on 3 consecutive failures
	for i, err := range []error{
		backends.Errorf(backends.Timeout, "the Approach 2 service did not answer within 15s"),
		backends.NotStarted(backends.Errorf(backends.Unavailable, "connection error")),
		backends.Errorf(backends.Timeout, "the Approach 2 service did not answer within 15s"),
	} {
		a2.fail(err)
		res, err := r.Execute(t.Context(), req(backends.OpStatus))
		if err != nil || !res.GetServed().FellBack || res.GetServed().Backend != "approach1" {
			t.Fatalf("read %d: %+v %v, want a fallback to approach1", i, res, err)
		}
	}
	if got := testutil.ToFloat64(r.breakers.state.WithLabelValues("status")); got != 2 {
		t.Fatalf("breaker state %v after 3 timeouts and unavailability, want 2 (open)", got)
	}
	calls := a2.calls.Load()
	for range 5 {
		if res, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil || !res.GetServed().FellBack {
			t.Fatalf("with the breaker open: %+v %v", res, err)
		}
	}
	if a2.calls.Load() != calls {
		t.Fatalf("%d reads reached approach2 with its breaker open", a2.calls.Load()-calls)
	}
	if got := testutil.ToFloat64(r.fallback.WithLabelValues("status", "not_started")); got != 6 {
		t.Fatalf("not_started fallbacks %v, want 6 (the unavailable one and the 5 refused)", got)
	}
}

// TestCanceledNeitherTripsNorResets: an answer of category canceled (a
// caller gave up somewhere on the way) says nothing about Approach 2's
// health: it does not count as a failure, nor as a success that would
// break a run of failures.
func TestCanceledNeitherTripsNorResets(t *testing.T) {
	a1, a2 := &scripted{}, &scripted{}
	r := newCanaryRouter(t, a1, a2, "approach2") // trips on 3 consecutive failures
	timeout := backends.Errorf(backends.Timeout, "the Approach 2 service did not answer within 15s")
	canceled := backends.Errorf(backends.Canceled, "the caller gave up")
	for _, err := range []error{timeout, timeout, canceled, canceled, canceled} {
		a2.fail(err)
		_, _ = r.Execute(t.Context(), req(backends.OpCommit))
	}
	if got := testutil.ToFloat64(r.breakers.state.WithLabelValues("commit")); got != 0 {
		t.Fatalf("breaker state %v after 2 timeouts and cancellations, want 0 (closed)", got)
	}
	a2.fail(timeout)
	_, _ = r.Execute(t.Context(), req(backends.OpCommit))
	if got := testutil.ToFloat64(r.breakers.state.WithLabelValues("commit")); got != 2 {
		t.Fatalf("breaker state %v after a third timeout (cancellations between), want 2 (open)", got)
	}
}

// slow is a backend whose failures each take longer than the breaker's
// counting interval, as calls timing out in a silent partition do.
type slow struct {
	calls atomic.Int64
	took  time.Duration
}

func (s *slow) Execute(context.Context, backends.Request) (backends.Result, error) {
	s.calls.Add(1)
	time.Sleep(s.took) // the call's own duration, not a wait for something
	return nil, backends.Errorf(backends.Timeout, "the Approach 2 service did not answer within %s", s.took)
}

// TestSlowFailuresStillTrip: gobreaker clears its counts every Interval;
// failures that each outlast it must still add up to ConsecutiveFailures
// (before, a partition whose calls each waited 20-40 s never opened a
// breaker with its 60 s interval).
func TestSlowFailuresStillTrip(t *testing.T) {
	a2 := &slow{took: 20 * time.Millisecond}
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": &scripted{}, "approach2": a2}, Default: "approach1",
		Flags: fixedDecider("approach2"), Breakers: BreakerConfig{ConsecutiveFailures: 3, Interval: 5 * time.Millisecond},
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if res, err := r.Execute(t.Context(), req(backends.OpStatus)); err != nil || !res.GetServed().FellBack {
			t.Fatalf("read %d: %+v %v", i, res, err)
		}
	}
	if got := testutil.ToFloat64(r.breakers.state.WithLabelValues("status")); got != 2 {
		t.Fatalf("breaker state %v after 3 slow failures, want 2 (open)", got)
	}
	if r.BreakerStates()["status"] != "open" {
		t.Fatalf("BreakerStates: %v", r.BreakerStates())
	}
}
