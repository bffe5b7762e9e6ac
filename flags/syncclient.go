package flags

import (
	"context"
	"sync/atomic"
	"time"

	syncv1grpc "buf.build/gen/go/open-feature/flagd/grpc/go/flagd/sync/v1/syncv1grpc"
	syncv1 "buf.build/gen/go/open-feature/flagd/protocolbuffers/go/flagd/sync/v1"
	"github.com/gitgate/gitgate/backends/pause"
	isync "github.com/open-feature/flagd/core/pkg/sync"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// syncClient is the flagd provider's sync source (isync.ISync): it follows
// a flagd.sync.v1.FlagSyncService stream, reconnecting every second while
// the source is away, and says at every moment whether the stream is up.
// It replaces the provider's own gRPC sync, whose stale/error event path
// races in v0.3.1 (it resets a sync.Once another goroutine uses); without
// those events, connected is how the evaluator knows the source is gone.
type syncClient struct {
	addr, selector string
	// connected is true while a stream is delivering flags.
	connected atomic.Bool
	// onChange, if set, is told about every stream state change.
	onChange func(up bool, err error)
	// onData, if set, sees every flag configuration received, before the
	// provider does.
	onData func(flags string)

	conn *grpc.ClientConn
	stub syncv1grpc.FlagSyncServiceClient
}

// syncRetry is the pause between two connection attempts.
const syncRetry = time.Second

var _ isync.ISync = (*syncClient)(nil)

func (c *syncClient) Init(context.Context) error {
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	c.conn, c.stub = conn, syncv1grpc.NewFlagSyncServiceClient(conn)
	return nil
}

func (c *syncClient) IsReady() bool { return c.connected.Load() }

// Sync streams the flags until ctx ends.
func (c *syncClient) Sync(ctx context.Context, out chan<- isync.DataSync) error {
	defer c.conn.Close()
	for {
		err := c.stream(ctx, out)
		c.set(false, err)
		if !pause.For(ctx, syncRetry) {
			return nil
		}
	}
}

func (c *syncClient) stream(ctx context.Context, out chan<- isync.DataSync) error {
	stream, err := c.stub.SyncFlags(ctx, &syncv1.SyncFlagsRequest{Selector: c.selector})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if c.onData != nil {
			c.onData(msg.GetFlagConfiguration())
		}
		select {
		case out <- isync.DataSync{FlagData: msg.GetFlagConfiguration(), SyncContext: msg.GetSyncContext(), Source: c.addr, Selector: c.selector}:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.set(true, nil)
	}
}

func (c *syncClient) set(up bool, err error) {
	if c.connected.Swap(up) != up && c.onChange != nil {
		c.onChange(up, err)
	}
}

// ReSync fetches all flags once.
func (c *syncClient) ReSync(ctx context.Context, out chan<- isync.DataSync) error {
	res, err := c.stub.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{Selector: c.selector})
	if err != nil {
		return err
	}
	out <- isync.DataSync{FlagData: res.GetFlagConfiguration(), Source: c.addr, Selector: c.selector}
	return nil
}
