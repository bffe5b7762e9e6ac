package approach1_test

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestConformance runs the whole suite against Approach 1 as the gateway
// runs it on one machine: the engine behind the exactly-once layer, with
// the embedded journal and file locks.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		return backendtest.NewApproach1Once(t, env)
	})
}
