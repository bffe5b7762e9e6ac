package approach1

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestEveryOperationHasAHandler walks the operation table (backends.Ops):
// every operation has an engine handler, every write a shadow prediction,
// and nothing is handled that the table does not declare. The failure
// lists every piece missing.
func TestEveryOperationHasAHandler(t *testing.T) {
	var missing []string
	declared := map[backends.Op]bool{}
	for _, info := range backends.Ops() {
		declared[info.Op] = true
		if _, ok := handlers[info.Op]; !ok {
			missing = append(missing, string(info.Op)+": an engine handler (approach1 handlers)")
		}
		if _, ok := predictors[info.Op]; info.Kind == backends.Write && !ok {
			missing = append(missing, string(info.Op)+": a shadow prediction (approach1 predictors)")
		}
	}
	for op := range handlers {
		if !declared[op] {
			missing = append(missing, string(op)+": handled but not in the operation table")
		}
	}
	for op := range predictors {
		if !declared[op] || op.IsRead() {
			missing = append(missing, string(op)+": predicted but not a write of the operation table")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("approach1 is missing:\n  %s", strings.Join(missing, "\n  "))
	}
}
