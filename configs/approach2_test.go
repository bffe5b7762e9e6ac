package configs

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestApproach2DialTargets: approach2.target (host:port or a gRPC target
// URI) or approach2.targets (several host:port) say where the gateway
// dials, with the default when neither is set; the file and the
// environment both set them.
func TestApproach2DialTargets(t *testing.T) {
	cases := []struct {
		yaml string
		want []string
	}{
		{"", []string{DefaultTarget}},
		{"approach2: {target: 10.0.0.7:7430}", []string{"10.0.0.7:7430"}},
		{"approach2: {target: \"dns:///gitgate-backend.gitgate.svc:7430\"}", []string{"dns:///gitgate-backend.gitgate.svc:7430"}},
		{"approach2: {target: \"dns://10.0.0.2:53/backend.internal:7430\"}", []string{"dns://10.0.0.2:53/backend.internal:7430"}},
		{"approach2: {target: \"unix:///run/gitgate/backend.sock\"}", []string{"unix:///run/gitgate/backend.sock"}},
		{"approach2: {target: \"[::1]:7430\"}", []string{"[::1]:7430"}},
		{"approach2:\n  targets: [10.0.0.7:7430, 10.0.0.8:7430]", []string{"10.0.0.7:7430", "10.0.0.8:7430"}},
	}
	for _, c := range cases {
		cfg, err := Load(writeConfig(t, c.yaml), noEnv)
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		cfg.Approach2.Token = "svc-token-0123456789" // what NeedApproach2 checks first
		if err := cfg.NeedApproach2(); err != nil {
			t.Errorf("%q: NeedApproach2: %v", c.yaml, err)
		}
		if got := cfg.Approach2.DialTargets(); !slices.Equal(got, c.want) {
			t.Errorf("%q: dial targets %q, want %q", c.yaml, got, c.want)
		}
	}
	t.Setenv("GITGATE_APPROACH2_TARGETS", "10.0.0.7:7430,10.0.0.8:7430")
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Approach2.DialTargets(); !slices.Equal(got, []string{"10.0.0.7:7430", "10.0.0.8:7430"}) {
		t.Errorf("GITGATE_APPROACH2_TARGETS: dial targets %q", got)
	}
}

// TestApproach2DialTargetsRefused: a bad address, both keys, a duplicate
// or an unsupported URI is refused naming the key, with what is wrong.
func TestApproach2DialTargetsRefused(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"approach2: {target: backend}", `approach2.target: "backend" is not host:port`},
		{"approach2: {target: \"backend:http\"}", `approach2.target: "backend:http" is not host:port (port "http" is not 1-65535)`},
		{"approach2: {target: \":7430\"}", `approach2.target: ":7430" is not host:port`},
		{"approach2: {target: \"10.0.0.7:70000\"}", `port "70000" is not 1-65535`},
		{"approach2: {target: \"dns:///backend\"}", `approach2.target: "dns:///backend" names the endpoint "backend", which is not host:port`},
		{"approach2: {target: \"xds:///backend:7430\"}", "is not host:port nor a gRPC target URI of a supported scheme (dns, passthrough, unix)"},
		{"approach2: {target: \"unix://\"}", "names no socket path"},
		{"approach2: {target: 10.0.0.7:7430, targets: [10.0.0.8:7430]}", "approach2.target and approach2.targets are both set"},
		{"approach2: {targets: [10.0.0.7:7430, backend]}", `approach2.targets[1]: "backend" is not host:port`},
		{"approach2: {targets: [\"dns:///backend:7430\"]}", `approach2.targets[0]: "dns:///backend:7430" is not host:port`},
		{"approach2: {targets: [10.0.0.7:7430, 10.0.0.7:7430]}", `approach2.targets[1]: "10.0.0.7:7430" is listed twice`},
		{"approach2: {drain_delay: -1s}", "approach2.drain_delay: -1s is negative"},
		{"approach2: {drain_timeout: -1s}", "approach2.drain_timeout: -1s is negative"},
	}
	for _, c := range cases {
		_, err := Load(writeConfig(t, c.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: error %v, want one containing %q", c.yaml, err, c.want)
		}
	}
}

// TestApproach2DrainDefaults: a service drains 5 s, then waits up to 15 s
// for its calls, unless configured otherwise.
func TestApproach2DrainDefaults(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Approach2.DrainDelay != 5*time.Second || cfg.Approach2.DrainTimeout != 15*time.Second {
		t.Fatalf("drain_delay %s, drain_timeout %s", cfg.Approach2.DrainDelay, cfg.Approach2.DrainTimeout)
	}
	cfg, err = Load(writeConfig(t, "approach2: {drain_delay: 0s, drain_timeout: 1m}"), noEnv)
	if err != nil || cfg.Approach2.DrainDelay != 0 || cfg.Approach2.DrainBound() != time.Minute {
		t.Fatalf("set: %+v %v", cfg, err)
	}
	if got := (Approach2Config{}).DrainBound(); got != DefaultDrainTimeout {
		t.Fatalf("drain_timeout 0 bounds the drain at %s, want %s", got, DefaultDrainTimeout)
	}
}
