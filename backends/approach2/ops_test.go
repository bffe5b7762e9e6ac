package approach2

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	pb "github.com/gitgate/gitgate/backends/approach2/approach2pb"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestEveryOperationCrossesTheWire walks the operation table
// (backends.Ops): every operation has a proto request and a proto result
// message in the oneofs named after it, and the client's and the server's
// conversions carry its request and its result across unchanged (once the
// table has its types; the table's own walk names them); the
// proto declares no operation that the table does not. The failure lists
// every piece missing, as "op: piece (where)".
func TestEveryOperationCrossesTheWire(t *testing.T) {
	const proto = "backends/approach2/approach2pb/approach2.proto"
	operations := oneofFields(&pb.OperationRequest{}, "operation")
	results := oneofFields(&pb.OperationResult{}, "result")
	var missing []string
	miss := func(op backends.Op, piece string) { missing = append(missing, string(op)+": "+piece) }
	declared := map[backends.Op]bool{}
	for _, info := range backends.Ops() {
		op := info.Op
		declared[op] = true
		if !operations[op] {
			miss(op, "a proto request message ("+proto+" OperationRequest.operation, then make proto)")
		} else if err := requestCrosses(op); err != "" {
			miss(op, "a request conversion that keeps every field (backends/approach2 encodeRequest, decodeRequest): "+err)
		}
		if !results[op] {
			miss(op, "a proto result message ("+proto+" OperationResult.result, then make proto)")
		} else if err := resultCrosses(op); err != "" {
			miss(op, "a result conversion that keeps every field (backends/approach2 encodeResult, decodeResult): "+err)
		}
	}
	for op := range operations {
		if !declared[op] {
			miss(op, "a proto request message but not in the operation table (backends/ops.go)")
		}
	}
	for op := range results {
		if !declared[op] {
			miss(op, "a proto result message but not in the operation table (backends/ops.go)")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("approach2 is missing:\n  %s", strings.Join(missing, "\n  "))
	}
}

// oneofFields returns the names of the fields of m's oneof.
func oneofFields(m protoreflect.ProtoMessage, oneof string) map[backends.Op]bool {
	out := map[backends.Op]bool{}
	fields := m.ProtoReflect().Descriptor().Oneofs().ByName(protoreflect.Name(oneof)).Fields()
	for i := range fields.Len() {
		out[backends.Op(fields.Get(i).Name())] = true
	}
	return out
}

// requestCrosses sends a request of op, every field set, from the client's
// encoding to the server's decoding; it returns what went wrong, or "" (also
// while op has no request type).
func requestCrosses(op backends.Op) string {
	seed := 0
	req := backends.NewRequest(op)
	if req == nil {
		return ""
	}
	fill(reflect.ValueOf(req), &seed)
	pbReq, err := encodeRequest(req, false)
	if err != nil {
		return err.Error()
	}
	got, err := decodeRequest(pbReq)
	switch {
	case err != nil:
		return err.Error()
	case !reflect.DeepEqual(got, req):
		return "a field changed"
	}
	return ""
}

// resultCrosses sends a result of op, every field set, from the server's
// encoding to the client's decoding; it returns what went wrong, or "" (also
// while op has no result type).
func resultCrosses(op backends.Op) string {
	seed := 0
	res := backends.NewResult(op)
	if res == nil {
		return ""
	}
	fill(reflect.ValueOf(res), &seed)
	*res.GetServed() = backends.Served{} // Served crosses beside the result (TestEveryFieldCrossesTheWire)
	pbRes, err := encodeResult(op, res)
	if err != nil {
		return err.Error()
	}
	got, err := decodeResult(op, pbRes)
	if err != nil {
		return err.Error()
	}
	*got.GetServed() = backends.Served{}
	if !reflect.DeepEqual(got, res) {
		return "a field changed"
	}
	return ""
}
