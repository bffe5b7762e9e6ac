package browsertest

import (
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestMain fails the package's tests when a goroutine outlives them (a
// browser connection left open).
func TestMain(m *testing.M) {
	testkit.VerifyTestMain(m)
}
