package approach2_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// partitioned is a service whose engine answers at once, reached through
// a proxy a test can turn into a silent blackhole.
type partitioned struct {
	client *approach2.Client
	proxy  *backendtest.TCPProxy
	calls  atomic.Int64 // operations that reached the engine
}

func newPartitioned(t *testing.T, cfg approach2.ClientConfig) *partitioned {
	t.Helper()
	p := &partitioned{}
	engine := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		p.calls.Add(1)
		return backends.NewResult(req.Op()), nil
	})
	p.proxy = backendtest.NewProxy(t, backendtest.StartApproach2(t, engine))
	p.client = backendtest.DialApproach2(t, p.proxy.Addr(), cfg)
	if _, err := p.client.Execute(t.Context(), statusReq()); err != nil { // connected
		t.Fatal(err)
	}
	return p
}

func commitReq() *backends.CommitRequest {
	return &backends.CommitRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w", IdempotencyKey: "k"}, Message: "m"}
}

// TestSilentPartitionTimesOutByKindOfOperation: with every byte dropped
// and nothing reset, a read fails as a timeout by the read deadline, and a
// write by the (longer) write deadline, neither waiting for the caller's
// own (here none) nor for gRPC. The write's outcome is unknown (its
// request was sent), so it is not marked as never started.
func TestSilentPartitionTimesOutByKindOfOperation(t *testing.T) {
	// Deadlines below the keepalive's detection, so that they decide.
	p := newPartitioned(t, approach2.ClientConfig{ReadTimeout: time.Second, CommandTimeout: time.Second, WriteSlack: time.Second})
	p.proxy.Blackhole(true)
	_, err := p.client.Execute(t.Context(), statusReq())
	wantErr(t, err, backends.Timeout, false)
	if !strings.Contains(err.Error(), "did not answer within 1s") {
		t.Errorf("read: %v, want the read deadline named", err)
	}
	_, err = p.client.Execute(t.Context(), commitReq())
	wantErr(t, err, backends.Timeout, false)
	if !strings.Contains(err.Error(), "did not answer within 2s") {
		t.Errorf("commit: %v, want the write deadline (command timeout + slack) named", err)
	}
}

// TestCallersEarlierDeadlineWins: a caller's deadline sooner than the
// client's is the one that applies, and the error is the caller's.
func TestCallersEarlierDeadlineWins(t *testing.T) {
	p := newPartitioned(t, approach2.ClientConfig{ReadTimeout: time.Hour})
	p.proxy.Blackhole(true)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := p.client.Execute(ctx, statusReq())
	wantErr(t, err, backends.Timeout, false)
	if strings.Contains(err.Error(), "did not answer within") {
		t.Errorf("the caller's deadline ended the call, but the error names the client's: %v", err)
	}
}

// TestKeepaliveNoticesADeadLink: with deadlines longer than the keepalive
// needs, a call on a silently dead link fails as unavailable once the
// keepalive notices (not at its deadline), and a write is not claimed as
// never started: its request went out before the link was found dead.
func TestKeepaliveNoticesADeadLink(t *testing.T) {
	t.Parallel() // it mostly waits for the keepalive

	long := 4 * (approach2.KeepaliveTime + approach2.KeepaliveTimeout) / 3 // 20 s: more than the keepalive needs, less than it used to (40 s)
	p := newPartitioned(t, approach2.ClientConfig{ReadTimeout: long, CommandTimeout: long, WriteSlack: time.Millisecond})
	before := p.calls.Load()
	p.proxy.Blackhole(true)
	_, err := p.client.Execute(t.Context(), commitReq())
	wantErr(t, err, backends.Unavailable, false)
	if n := p.calls.Load(); n != before {
		t.Fatalf("%d operations reached the engine through the blackhole", n-before)
	}
	// The dead connection is gone; new ones are swallowed too, and a read
	// fails (by its deadline or as unavailable) without hanging.
	_, err = p.client.Execute(t.Context(), statusReq())
	if cat := backends.CategoryOf(err); cat != backends.Unavailable && cat != backends.Timeout {
		t.Fatalf("a read through the blackhole: %v", err)
	}
}

// TestKeepalivePingsAreAllowed: the service accepts the client's pings
// between calls (no GOAWAY too_many_pings), so an idle connection stays
// up: calls after a few keepalive periods of idleness reach the engine on
// the same connection, without a new one.
func TestKeepalivePingsAreAllowed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits three keepalive periods")
	}
	t.Parallel() // it mostly waits
	p := newPartitioned(t, approach2.ClientConfig{})
	conns := p.proxy.Accepted
	idle := time.NewTimer(3*approach2.KeepaliveTime + time.Second)
	<-idle.C // idleness is what is tested: the client pings meanwhile
	if _, err := p.client.Execute(t.Context(), statusReq()); err != nil {
		t.Fatal(err)
	}
	if n := conns(); n != 1 {
		t.Fatalf("%d connections after idling, want the first one only (the service closed it for pinging?)", n)
	}
}
