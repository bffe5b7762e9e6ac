package backends

import (
	"strings"
	"testing"
)

// TestOpTableDeclaresEveryPiece walks the operation table: every operation
// has a title and summary, a request whose Op is its own and whose scope
// is there, and a result that carries the served backend; only a write to
// the remote is settled by the remote. The failure lists every piece
// missing, as "op: piece (where)", so that a new operation is declared
// whole.
func TestOpTableDeclaresEveryPiece(t *testing.T) {
	var missing []string
	seen := map[Op]bool{}
	for _, info := range Ops() {
		op := info.Op
		if seen[op] {
			missing = append(missing, string(op)+": declared once (backends/ops.go opTable)")
		}
		seen[op] = true
		if info.Kind != Read && info.Kind != Write {
			missing = append(missing, string(op)+": a kind, Read or Write (backends/ops.go opTable)")
		}
		if info.Title == "" || info.Summary == "" {
			missing = append(missing, string(op)+": a title and a summary, the MCP tool's (backends/ops.go opTable)")
		}
		if info.newRequest == nil || info.newResult == nil {
			missing = append(missing, string(op)+": request and result constructors (backends/ops.go opTable)")
			continue
		}
		if req := NewRequest(op); req == nil || req.Op() != op || req.GetScope() == nil {
			missing = append(missing, string(op)+": a request type whose Op() is "+string(op)+" (backends/request.go)")
		}
		if res := NewResult(op); res == nil || res.GetServed() == nil {
			missing = append(missing, string(op)+": a result type embedding Served (backends/result.go)")
		}
		if info.SettledByRemote && (info.Kind != Write || !info.Remote) {
			missing = append(missing, string(op)+": SettledByRemote only on a write to the remote, Kind Write and Remote (backends/ops.go opTable)")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the operation table is missing:\n  %s", strings.Join(missing, "\n  "))
	}
	// How a started write whose outcome is not known is settled.
	for op, want := range map[Op]Settle{OpPush: SettleByRemote, OpCheckout: SettleRerun, OpWriteFile: SettleRerun,
		OpDeleteFile: SettleRerun, OpCommit: SettleUnknown, OpClone: SettleUnknown, OpPull: SettleUnknown, OpReleaseWorkspace: SettleUnknown} {
		if got := op.Settle(); got != want {
			t.Errorf("%s.Settle() = %d, want %d", op, got, want)
		}
	}
	if NewRequest("no_such_op") != nil || NewResult("no_such_op") != nil {
		t.Fatal("an unknown op has a request or a result")
	}
}
