package approach1_test

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/relaytest"
)

// TestConformance runs the whole suite against Approach 1 as the gateway
// runs it on one machine: the engine behind the exactly-once layer, with
// the embedded journal and file locks.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		return backendtest.NewApproach1Once(t, env)
	})
}

// TestConformanceThroughTheRelay: the same suite with every remote command
// going through the git relay (backends/relay), git in the sandboxes
// holding a capability and never the token. Sampled: the engine's long
// tables of refused input are TestConformance's; the path around it is
// what the relay changes.
func TestConformanceThroughTheRelay(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		ex, _ := relaytest.NewRelayedApproach1Once(t, env, "")
		return ex
	}, backendtest.Sampled())
}
