package backends

import (
	"strings"
	"testing"
)

// TestOpTableDeclaresEveryPiece walks the operation table: every operation
// has a title and summary, a request whose Op is its own and whose scope
// is there, and a result that carries the served backend; only a write to
// the remote is settled by the remote. The failure lists every piece
// missing, so that a new operation is declared whole.
func TestOpTableDeclaresEveryPiece(t *testing.T) {
	var missing []string
	seen := map[Op]bool{}
	for _, info := range Ops() {
		op := info.Op
		if seen[op] {
			missing = append(missing, string(op)+": declared twice")
		}
		seen[op] = true
		if info.Kind != Read && info.Kind != Write {
			missing = append(missing, string(op)+": kind (Read or Write)")
		}
		if info.Title == "" || info.Summary == "" {
			missing = append(missing, string(op)+": title and summary (the MCP tool's)")
		}
		if info.newRequest == nil || info.newResult == nil {
			missing = append(missing, string(op)+": request and result constructors")
			continue
		}
		if req := NewRequest(op); req == nil || req.Op() != op || req.GetScope() == nil {
			missing = append(missing, string(op)+": a request type whose Op() is "+string(op))
		}
		if res := NewResult(op); res == nil || res.GetServed() == nil {
			missing = append(missing, string(op)+": a result type embedding Served")
		}
		if info.SettledByRemote && (info.Kind != Write || !info.Remote) {
			missing = append(missing, string(op)+": only a write to the remote is settled by the remote (SettledByRemote needs Kind Write and Remote)")
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
