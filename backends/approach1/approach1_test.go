package approach1_test

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) backends.Executor {
		return backendtest.NewApproach1(t, env)
	})
}
