package testkit

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs a package's tests (m) and fails them when a goroutine
// outlives them (goleak), apart from those opts ignore and OpenFeature's
// API-wide event executor: one per process, started when the package is
// first used and never stopped. Its goroutine's top function has either
// of two names, depending on what started the executor first.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	opts = append(opts,
		goleak.IgnoreTopFunction("github.com/open-feature/go-sdk/openfeature.newEventExecutor.(*eventExecutor).startEventListener.func1.1"),
		goleak.IgnoreTopFunction("github.com/open-feature/go-sdk/openfeature.(*eventExecutor).startEventListener.func1.1"))
	goleak.VerifyTestMain(m, opts...)
}
