package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestRouter(t *testing.T, ex backends.ExecutorFunc, logs *bytes.Buffer) (*Router, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry(), "approach1")
	r, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{"approach1": ex}, Default: "approach1",
		Metrics: m, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return r, m
}

func statusReq() *backends.StatusRequest {
	return &backends.StatusRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w"}}
}

func TestRouterStampsTheBackendAndCounts(t *testing.T) {
	var logs bytes.Buffer
	r, m := newTestRouter(t, func(context.Context, backends.Request) (backends.Result, error) {
		return &backends.StatusResult{}, nil
	}, &logs)
	res, err := r.Execute(t.Context(), statusReq())
	if err != nil || res.GetServed().Backend != "approach1" {
		t.Fatalf("result %+v, err %v", res, err)
	}
	if n := testutil.ToFloat64(m.ops.WithLabelValues("status", "approach1", "ok", "")); n != 1 {
		t.Fatalf("ok counter %v", n)
	}
	if n := testutil.ToFloat64(m.inFlight.WithLabelValues("status")); n != 0 {
		t.Fatalf("in flight %v after the call", n)
	}
	if !strings.Contains(logs.String(), "level=DEBUG msg=\"operation served\" op=status backend=approach1") {
		t.Fatalf("log: %s", logs.String())
	}
}

func TestRouterTurnsPanicsIntoInternalErrors(t *testing.T) {
	var logs bytes.Buffer
	r, m := newTestRouter(t, func(context.Context, backends.Request) (backends.Result, error) {
		panic("backend bug")
	}, &logs)
	_, err := r.Execute(t.Context(), statusReq())
	if backends.CategoryOf(err) != backends.Internal || strings.Contains(err.Error(), "backend bug") {
		t.Fatalf("err %v", err)
	}
	if n := testutil.ToFloat64(m.ops.WithLabelValues("status", "approach1", "error", "internal")); n != 1 {
		t.Fatalf("internal error counter %v", n)
	}
	if !strings.Contains(logs.String(), "backend panicked") || !strings.Contains(logs.String(), "level=WARN msg=\"operation failed\"") {
		t.Fatalf("log: %s", logs.String())
	}
}

func TestRouterLogsClientMistakesAtInfo(t *testing.T) {
	var logs bytes.Buffer
	r, _ := newTestRouter(t, func(context.Context, backends.Request) (backends.Result, error) {
		return nil, backends.Errorf(backends.NotFound, "no such workspace")
	}, &logs)
	if _, err := r.Execute(t.Context(), statusReq()); backends.CategoryOf(err) != backends.NotFound {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"operation failed\"") || !strings.Contains(logs.String(), "category=not_found") {
		t.Fatalf("log: %s", logs.String())
	}
}

func TestNewRouterNeedsItsDefaultBackend(t *testing.T) {
	if _, err := NewRouter(RouterConfig{Backends: map[backends.Name]backends.Executor{}, Default: "approach1"}); err == nil {
		t.Fatal("a router without its default backend was built")
	}
}

func TestDirectory(t *testing.T) {
	d, err := NewDirectory([]Agent{{Name: "a", Project: "p", TokenSHA256: HashToken("token-a")}, {Name: "b", Project: "q", TokenSHA256: strings.ToUpper(HashToken("token-b"))}})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := d.Authenticate("token-a"); !ok || a.Name != "a" || a.Principal().Project != "p" {
		t.Fatalf("token-a: %+v %v", a, ok)
	}
	if b, ok := d.Authenticate("token-b"); !ok || b.Name != "b" {
		t.Fatalf("token-b (configured as an upper-case hash): %+v %v", b, ok)
	}
	for _, tok := range []string{"", "token-c", "token-a "} {
		if _, ok := d.Authenticate(tok); ok {
			t.Errorf("%q authenticated", tok)
		}
	}
	if _, err := NewDirectory([]Agent{{Name: "a", TokenSHA256: HashToken("x")}, {Name: "b", TokenSHA256: HashToken("x")}}); err == nil {
		t.Error("two agents with one token were accepted")
	}
	if _, err := NewDirectory([]Agent{{Name: "a", TokenSHA256: "abc"}}); err == nil {
		t.Error("a malformed hash was accepted")
	}
}
