package e2b_test

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/sandbox/e2b"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/e2bfake"
)

// newProvider is the E2B provider on a fresh local E2B.
func newProvider(t testing.TB, s *e2bfake.Server) *e2b.Provider {
	t.Helper()
	return newProviderWith(t, s, nil)
}

// newProviderWith is newProvider with its configuration changed by edit.
func newProviderWith(t testing.TB, s *e2bfake.Server, edit func(*e2b.ProviderConfig)) *e2b.Provider {
	t.Helper()
	a, err := e2b.NewAPI(e2b.APIConfig{BaseURL: s.URL(), APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e2b.ProviderConfig{API: a, EnvdURL: s.URL(), Template: "gitgate"}
	if edit != nil {
		edit(&cfg)
	}
	p, err := e2b.NewProvider(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// onE2B is a test world: a remote with the seeded repository, the local
// E2B (cfg) and the embedded executor on E2B sandboxes.
func onE2B(t *testing.T, cfg e2bfake.Config) (*backendtest.Env, *e2bfake.Server, *approach1.Executor) {
	t.Helper()
	env := backendtest.NewEnv(t)
	ex, s := backendtest.NewE2BEngine(t, env, cfg)
	return env, s, ex
}

// TestConformanceOnE2B runs the whole backend conformance suite with the
// embedded executor on E2B sandboxes (the local E2B, commands run for
// real), behind the exactly-once layer as the gateway runs it; the long
// tables and the concurrent parts are sampled (TestConformance in
// approach1 runs them whole on the same engine).
func TestConformanceOnE2B(t *testing.T) {
	// The package's longest test by far, a chain of round trips to the
	// local E2B. The tests that mostly wait (for deadlines, Retry-After,
	// a hanging remote, a dead sandbox) run beside it: each has its own
	// local E2B and remote, and finds its processes by its own marker.
	t.Parallel()
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		ex, _ := backendtest.NewE2BOnce(t, env, e2bfake.Config{MaxConcurrent: 100})
		return ex
	}, backendtest.Sampled())
}
