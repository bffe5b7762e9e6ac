package approach2_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
)

func TestMaxMessageBytes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ file, output, want int }{
		{0, 0, (10<<20)*4/3 + 4 + 1<<20},
		{20 << 20, 0, (20<<20)*4/3 + 4 + 1<<20},
		{1024, 4 << 20, (4<<20)*4/3 + 4 + 1<<20},
	} {
		if got := approach2.MaxMessageBytes(c.file, c.output); got != c.want {
			t.Errorf("MaxMessageBytes(%d, %d) = %d, want %d", c.file, c.output, got, c.want)
		}
	}
}

// TestClientRefusesContentAboveItsLimit: content that cannot be within the
// configured limit, even base64-encoded, is answered by the client as the
// engine would answer it, marked as never started, and never sent.
func TestClientRefusesContentAboveItsLimit(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	engine := backends.ExecutorFunc(func(context.Context, backends.Request) (backends.Result, error) {
		calls.Add(1)
		return &backends.WriteFileResult{Path: "f", Size: 1}, nil
	})
	c := backendtest.ServeApproach2(t, engine, approach2.ClientConfig{MaxFileBytes: 1024})
	p := backends.Principal{Project: "p", Agent: "a"}
	w := &backends.WriteFileRequest{Scope: backends.Scope{Principal: p, Workspace: "w"}, Path: "f", Content: strings.Repeat("x", 1024*4/3+5)}
	_, err := c.Execute(t.Context(), w)
	if backends.CategoryOf(err) != backends.ResourceExhausted || backends.MessageOf(err) != "content is larger than the 1024-byte limit" ||
		!errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("write above the client's limit: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the service was called %d times", n)
	}
	// Content that may decode to within the limit is the service's to judge.
	w.Content = strings.Repeat("x", 1024*4/3+4)
	if _, err := c.Execute(t.Context(), w); err != nil || calls.Load() != 1 {
		t.Fatalf("write near the limit: %v (calls %d)", err, calls.Load())
	}
}

// TestInvalidUTF8IsInvalidArgument: strings a proto message cannot carry
// are refused by the client as the engine refuses them, not as an internal
// marshalling failure; reads ignore a bad key, as they ignore keys.
func TestInvalidUTF8IsInvalidArgument(t *testing.T) {
	t.Parallel()
	engine := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		return backends.NewResult(req.Op()), nil
	})
	c := startService(t, engine)
	p := backends.Principal{Project: "p", Agent: "a"}
	for _, req := range []backends.Request{
		&backends.WriteFileRequest{Scope: backends.Scope{Principal: p, Workspace: "w"}, Path: "f", Content: "\xff"},
		&backends.CommitRequest{Scope: backends.Scope{Principal: p, Workspace: "w"}, Message: "m", Paths: []string{"\xfe"}},
		&backends.CommitRequest{Scope: backends.Scope{Principal: p, Workspace: "w", IdempotencyKey: "\xff"}, Message: "m"},
	} {
		_, err := c.Execute(t.Context(), req)
		if backends.CategoryOf(err) != backends.InvalidArgument || !errors.Is(err, backends.ErrNotStarted) {
			t.Errorf("%s: %v, want invalid_argument, not started", req.Op(), err)
		}
	}
	_, err := c.Execute(t.Context(), &backends.WriteFileRequest{Scope: backends.Scope{Principal: p, Workspace: "w"}, Path: "f", Content: "\xff"})
	if msg := backends.MessageOf(err); msg != "content is not valid UTF-8; send it with encoding base64" {
		t.Errorf("message %q, want Approach 1's", msg)
	}
	if _, err := c.Execute(t.Context(), &backends.StatusRequest{Scope: backends.Scope{Principal: p, Workspace: "w", IdempotencyKey: "\xff"}}); err != nil {
		t.Errorf("status with a bad key: %v", err)
	}
}
