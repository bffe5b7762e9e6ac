package e2b_test

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCostModel: a sandbox's price per second comes from its vCPUs and
// memory (reported by E2B) at the configured prices, and destroying it
// counts its lifetime and cost; a sandbox that is gone is not found.
func TestCostModel(t *testing.T) {
	s := fake(t, e2bfake.Config{CPUCount: 4, MemoryMB: 2048})
	a := api(t, s, apiKey)
	reg := prometheus.NewRegistry()
	p, err := e2b.NewProvider(e2b.ProviderConfig{API: a, EnvdURL: s.URL(), Template: "gitgate", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := 4*e2b.DefaultVCPUSecondUSD + 2*e2b.DefaultGiBSecondUSD // $0.000065/s, $0.234/h
	if got := p.CostPerSecond(info.ID); math.Abs(got-want) > 1e-15 {
		t.Fatalf("cost per second %v, want %v", got, want)
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	life, cost := counter(t, reg, "gitgate_e2b_sandbox_seconds_total"), counter(t, reg, "gitgate_e2b_cost_usd_total")
	if life < 0.2 || life > 5 || math.Abs(cost-life*want) > 1e-12 {
		t.Fatalf("lifetime %v s, cost $%v", life, cost)
	}
	_, err = p.Lookup(t.Context(), info.ID)
	wantCategory(t, err, backends.NotFound)
}

// counter returns the value of a registered counter.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestExecStdinAndBackground: standard input reaches the program (through
// an uploaded file, never in the request), and shadow work runs at
// niceness 19.
func TestExecStdinAndBackground(t *testing.T) {
	s := fake(t, e2bfake.Config{})
	p := newProvider(t, s)
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	const input = "a commit message\nwith two lines"
	res, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: "/bin/cat", Stdin: []byte(input), Timeout: time.Minute})
	if err != nil || string(res.Stdout) != input {
		t.Fatalf("cat of stdin: %q, %v", res.Stdout, err)
	}
	for _, r := range s.Records() {
		if r.Path == "/process.Process/Start" && strings.Contains(string(r.Body), "commit message") {
			t.Fatal("standard input travelled in a process request")
		}
	}
	res, err = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "nice"}, Background: true, Timeout: time.Minute})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "19" {
		t.Fatalf("background niceness: %q, %v", res.Stdout, err)
	}
}

// failingLists answers 403 to the sandbox listings whose metadata filter
// is exactly failing, and passes every other request on.
type failingLists struct{ failing string }

func (f failingLists) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v2/sandboxes" && r.URL.Query().Get("metadata") == f.failing {
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(`{"code":403,"message":"listing refused"}`)), Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestFindListsTogether: Find's two listings (the owner's sandboxes, and
// every gitgate sandbox for the pooled ones) cost one round trip, not one
// after the other; either failing fails Find.
func TestFindListsTogether(t *testing.T) {
	s := fake(t, e2bfake.Config{Latency: 20 * time.Millisecond})
	p := newProvider(t, s)
	alpha := sandbox.Owner{Project: "alpha"}
	if _, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: alpha, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	found, err := p.Find(t.Context(), alpha)
	if err != nil || len(found) != 1 {
		t.Fatalf("alpha finds %v (%v), want its sandbox", found, err)
	}
	if c := s.Counts(); c.APIRequests != 2 || c.RoundTrips != 1 {
		t.Fatalf("counts %+v: want two listings in one round trip", c)
	}
	for _, failing := range []string{"gitgate=1&gitgate.project=alpha", "gitgate=1"} {
		a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), APIKey: apiKey, HTTP: &http.Client{Transport: failingLists{failing}}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := e2b.NewProvider(e2b.ProviderConfig{API: a, EnvdURL: s.URL(), Template: "gitgate"})
		if err != nil {
			t.Fatal(err)
		}
		found, err := p.Find(t.Context(), alpha)
		if err == nil || !strings.Contains(err.Error(), "listing refused") {
			t.Errorf("the listing %q failed, yet Find returned %v (%v)", failing, found, err)
		}
	}
}
