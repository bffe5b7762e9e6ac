package e2b_test

import (
	"context"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/e2bfake"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// requests returns gitgate_e2b_requests_total{api, call, outcome}.
func requests(t *testing.T, reg *prometheus.Registry, api, call, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "gitgate_e2b_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["api"] == api && l["call"] == call && l["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRequestMetricsAndUsage: every request to the control plane and to
// envd is counted by API, call and outcome; the provider measures a
// sandbox through envd's /metrics (the stand-in serves it from its
// processes as measured in /proc): memory while a command runs, CPU after
// one burned some. Costs about 1 s.
func TestRequestMetricsAndUsage(t *testing.T) {
	s := fake(t, e2bfake.Config{CPUCount: 2, MemoryMB: 512})
	reg := prometheus.NewRegistry()
	p, err := e2b.NewProvider(e2b.ProviderConfig{API: api(t, s, apiKey), EnvdURL: s.URL(), Template: "gitgate", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.Create(t.Context(), sandbox.CreateOptions{Owner: sandbox.Owner{Project: "alpha"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if n := requests(t, reg, "control", "create", "ok"); n != 1 {
		t.Errorf("control create ok = %v, want 1", n)
	}
	if _, err := p.Lookup(t.Context(), "no-such-sandbox"); err == nil {
		t.Fatal("Lookup of an unknown sandbox succeeded")
	}
	if n := requests(t, reg, "control", "get", "error"); n != 1 {
		t.Errorf("control get error = %v, want 1", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.Exec(ctx, info.ID, sandbox.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "sleep 30; :"}, Timeout: time.Minute})
	}()
	testkit.Eventually(t, "the running command's memory is measured through envd /metrics", func() bool {
		u, err := p.Usage(t.Context(), info.ID)
		return err == nil && u.MemUsed > 0 && u.MemTotal == 512<<20
	})
	cancel()
	<-done

	if _, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Path: "/bin/sh",
		Args:    []string{"-c", "end=$(($(date +%s%N)+500000000)); while [ $(date +%s%N) -lt $end ]; do :; done"},
		Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	u, err := p.Usage(t.Context(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.CPU > 1 {
		t.Errorf("after a CPU burner: CPU %v, want in (0, 1]", u.CPU)
	}
	if n := requests(t, reg, "envd", "metrics", "ok"); n < 2 {
		t.Errorf("envd metrics ok = %v, want at least 2", n)
	}
	if n := requests(t, reg, "envd", "process", "ok"); n < 2 {
		t.Errorf("envd process ok = %v, want at least 2", n)
	}
}
