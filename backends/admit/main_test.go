package admit

import (
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) {
	testkit.VerifyTestMain(m)
}
