package approach1

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestEveryOperationHasAHandler walks the operation table (backends.Ops):
// every operation has an engine handler, every write a shadow prediction,
// and nothing is handled that the table does not declare. The failure
// lists every piece missing, as "op: piece (where)".
func TestEveryOperationHasAHandler(t *testing.T) {
	var missing []string
	declared := map[backends.Op]bool{}
	for _, info := range backends.Ops() {
		declared[info.Op] = true
		if _, ok := handlers[info.Op]; !ok {
			missing = append(missing, string(info.Op)+": an engine handler (backends/approach1/ops.go handlers)")
		}
		if _, ok := predictors[info.Op]; info.Kind == backends.Write && !ok {
			missing = append(missing, string(info.Op)+": a shadow prediction of the write (backends/approach1/ops.go predictors)")
		}
	}
	for op := range handlers {
		if !declared[op] {
			missing = append(missing, string(op)+": a handler but not in the operation table (backends/ops.go)")
		}
	}
	for op := range predictors {
		if !declared[op] || op.IsRead() {
			missing = append(missing, string(op)+": a prediction but not a write of the operation table (backends/ops.go)")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("approach1 is missing:\n  %s", strings.Join(missing, "\n  "))
	}
}
