package approach2

import (
	"reflect"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	pb "github.com/gitgate/gitgate/backends/approach2/approach2pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fill sets every exported field reachable from v to a distinct non-zero
// value (lists get two elements), so that a field lost on the wire shows.
func fill(v reflect.Value, seed *int) {
	switch v.Kind() {
	case reflect.Pointer:
		fill(v.Elem(), seed)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed)
		}
		v.Set(s)
	case reflect.String:
		*seed++
		v.SetString("s" + string(rune('a'+*seed%26)) + reflect.ValueOf(*seed).String())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		*seed++
		v.SetInt(int64(*seed) * 1_000_003)
	}
}

// TestEveryFieldCrossesTheWire: every field of every request and result
// survives Go → proto → Go; a field added on one side only fails here.
// An operation the table declares without its types yet is left to the
// walks (TestEveryOperationCrossesTheWire, TestOpTableDeclaresEveryPiece).
func TestEveryFieldCrossesTheWire(t *testing.T) {
	for _, info := range backends.Ops() {
		if backends.NewRequest(info.Op) == nil || backends.NewResult(info.Op) == nil {
			continue
		}
		seed := 0
		req := backends.NewRequest(info.Op)
		fill(reflect.ValueOf(req), &seed)
		req.GetScope().Principal = backends.Principal{Project: "p", Agent: "a", AuthorName: "A", AuthorEmail: "a@x"}
		pbReq, err := encodeRequest(req, true)
		if err != nil {
			t.Fatalf("%s: %v", info.Op, err)
		}
		wire, _ := proto.Marshal(pbReq)
		var back pb.OperationRequest
		if err := proto.Unmarshal(wire, &back); err != nil {
			t.Fatal(err)
		}
		got, err := decodeRequest(&back)
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Errorf("%s request changed on the wire:\n got %+v\nwant %+v (%v)", info.Op, got, req, err)
		}
		res := backends.NewResult(info.Op)
		fill(reflect.ValueOf(res), &seed)
		*res.GetServed() = backends.Served{Backend: Name.String(), DurationMS: 42, Notices: []string{"restored", "twice"},
			WriteSeq: 7, ReadFrom: 6, CostUSD: 0.0125, Wait: 1234 * time.Microsecond}
		pbRes, err := encodeResult(info.Op, res)
		if err != nil {
			t.Fatalf("%s: %v", info.Op, err)
		}
		gotRes, err := decodeResult(info.Op, pbRes)
		if err != nil || !reflect.DeepEqual(gotRes, res) {
			t.Errorf("%s result changed on the wire:\n got %+v\nwant %+v (%v)", info.Op, gotRes, res, err)
		}
	}
}

// TestProtoHasNoFieldTheGoTypeLacks: the converter refuses a proto field
// without a Go counterpart, so the two cannot drift silently.
func TestProtoHasNoFieldTheGoTypeLacks(t *testing.T) {
	type short struct {
		Workspace string `json:"workspace"`
	}
	m := (&pb.CloneRequest{}).ProtoReflect()
	if err := toProto(short{Workspace: "w"}, m); err == nil {
		t.Fatal("a Go type without url/branch/depth was accepted for CloneRequest")
	}
	var _ protoreflect.Message = m
}
