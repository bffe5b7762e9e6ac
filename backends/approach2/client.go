package approach2

import (
	"context"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gitgate/gitgate/backends"
	pb "github.com/gitgate/gitgate/backends/approach2/approach2pb"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Token is the bearer token the service expects. Required unless
	// Tokens is set.
	Token string
	// Tokens, if set, is read at every call instead of Token: a rotated
	// token applies to the next call, and during the rotation's grace
	// window the previous one is sent too (see Tokens).
	Tokens Tokens
	// Insecure allows the token over a connection without TLS (loopback
	// and tests). Without it, dial options must provide TLS.
	Insecure bool
	// MaxFileBytes is the write_file limit (limits.max_file_bytes) and
	// MaxOutputBytes the output page limit (limits.max_output_bytes), as
	// configured for the service; zero means the defaults (10 MiB,
	// 256 KiB). They size the messages the client sends (see
	// MaxMessageBytes), and a write_file above the limit is refused here,
	// with the service's answer, without sending it.
	MaxFileBytes, MaxOutputBytes int
	// ReadTimeout bounds every read (status, read_file, ...) on the
	// service, the wait for a connection included, so that a silent
	// partition fails a read, which then falls back, within seconds. Zero:
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// CommandTimeout and RemoteTimeout are the service's git.command_timeout
	// and git.remote_timeout (zero: their defaults, 1 min and 10 min). A
	// write that stays local may take CommandTimeout plus WriteSlack, one
	// that talks to the remote (clone, pull, push) RemoteTimeout plus
	// CommandTimeout plus WriteSlack.
	CommandTimeout, RemoteTimeout time.Duration
	// WriteSlack is what a write may spend besides its git commands:
	// waiting for the workspace lock and a sandbox, the journal. Zero:
	// DefaultWriteSlack.
	WriteSlack time.Duration
}

// The defaults of the per-call deadlines (see ClientConfig). A deadline
// applies only when the caller's context has none or a later one.
const (
	DefaultReadTimeout    = 15 * time.Second
	DefaultWriteSlack     = 30 * time.Second
	DefaultCommandTimeout = time.Minute
	DefaultRemoteTimeout  = 10 * time.Minute
)

// Keepalive: with no frame from the service for KeepaliveTime the client
// pings it and drops the connection if no answer comes within
// KeepaliveTimeout, also between calls, so that a dead link is noticed
// within KeepaliveTime+KeepaliveTimeout (calls in flight then fail as
// unavailable). KeepaliveTime is the least gRPC allows a client; the
// service must permit pings that often (see KeepaliveMinTime).
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 5 * time.Second
)

// connectTimeout bounds one attempt to connect (TCP and the HTTP/2
// handshake): past it the connection counts as failed, and calls fail at
// once as unavailable (never started) instead of waiting for their
// deadline. gRPC's own default is 20 s.
const connectTimeout = 5 * time.Second

// deadlines are the per-call time limits by kind of operation.
type deadlines struct{ read, write, remote time.Duration }

func (c ClientConfig) deadlines() deadlines {
	or := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	cmd, remote, slack := or(c.CommandTimeout, DefaultCommandTimeout), or(c.RemoteTimeout, DefaultRemoteTimeout), or(c.WriteSlack, DefaultWriteSlack)
	return deadlines{read: or(c.ReadTimeout, DefaultReadTimeout), write: cmd + slack, remote: remote + cmd + slack}
}

// of returns the time limit of op.
func (d deadlines) of(op backends.Op) time.Duration {
	info, _ := backends.Info(op)
	switch {
	case info.Kind == backends.Read:
		return d.read
	case info.Remote:
		return d.remote
	}
	return d.write
}

// The defaults of the size limits, the same as Approach 1's.
const (
	DefaultMaxFileBytes   = 10 << 20
	DefaultMaxOutputBytes = 256 << 10
)

// messageHeadroom is what a message may hold besides its largest field.
const messageHeadroom = 1 << 20

// minResultBytes is the least the client accepts as an answer: reads that
// are not paged (log, branches, status) can carry up to 16 MiB of git
// output, more than a page.
const minResultBytes = 64 << 20

// MaxMessageBytes is the largest request the client sends and the server
// accepts for the given limits (zero: the defaults): room for write_file
// content of maxFileBytes, or an output page of maxOutputBytes, even
// base64-encoded (a third larger), plus 1 MiB for the rest of the message.
// gRPC's own default, 4 MiB, would refuse files the documented limit
// allows.
func MaxMessageBytes(maxFileBytes, maxOutputBytes int) int {
	f, o := limitsOrDefaults(maxFileBytes, maxOutputBytes)
	return encodedLen(max(f, o)) + messageHeadroom
}

func limitsOrDefaults(maxFileBytes, maxOutputBytes int) (int, int) {
	if maxFileBytes <= 0 {
		maxFileBytes = DefaultMaxFileBytes
	}
	if maxOutputBytes <= 0 {
		maxOutputBytes = DefaultMaxOutputBytes
	}
	return maxFileBytes, maxOutputBytes
}

// encodedLen bounds the length of n bytes as write_file content: base64
// with padding, as Approach 1 allows before decoding.
func encodedLen(n int) int { return n*4/3 + 4 }

// Client calls the Approach 2 service. It implements backends.Executor.
type Client struct {
	conn         *grpc.ClientConn
	stub         pb.GitServiceClient
	maxFileBytes int
	deadlines    deadlines
}

var (
	_ backends.Executor  = (*Client)(nil)
	_ backends.Predictor = (*Client)(nil)
)

// Dial connects to the service at target: "host:port", or a gRPC target
// URI such as dns:///name:port (every address it resolves to, as DialAll).
// Connections are kept alive so that a silently dead peer is noticed
// within KeepaliveTime+KeepaliveTimeout, and every call has a deadline by
// kind of operation (ClientConfig).
// Requests up to MaxMessageBytes of the configured limits are sent, and
// answers up to that or 64 MiB, whichever is more, accepted.
func Dial(target string, cfg ClientConfig, opts ...grpc.DialOption) (*Client, error) {
	return DialAll([]string{target}, cfg, opts...)
}

// DialAll is Dial to several services: one target as Dial takes it, or
// several host:port addresses. Calls are balanced round robin over the
// addresses whose gRPC health reports GitService SERVING (serviceConfig), so
// that a service that is not ready, or drains before it stops, gets no new
// calls.
func DialAll(targets []string, cfg ClientConfig, opts ...grpc.DialOption) (*Client, error) {
	target, resolve, err := dialTarget(targets)
	if err != nil {
		return nil, err
	}
	maxFile, _ := limitsOrDefaults(cfg.MaxFileBytes, cfg.MaxOutputBytes)
	size := MaxMessageBytes(cfg.MaxFileBytes, cfg.MaxOutputBytes)
	base := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithPerRPCCredentials(rotatingBearer{tokens: tokensOr(cfg.Tokens, cfg.Token), insecure: cfg.Insecure}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: connectTimeout}),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(size), grpc.MaxCallRecvMsgSize(max(size, minResultBytes))),
	}
	if cfg.Insecure {
		base = append(base, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	base = append(base, resolve...)
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, stub: pb.NewGitServiceClient(conn), maxFileBytes: maxFile, deadlines: cfg.deadlines()}, nil
}

// Target returns the target the client dials: the one it was given, or
// for several addresses a gitgate-services:/// URI listing them.
func (c *Client) Target() string { return c.conn.Target() }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Execute runs req on the service within the deadline of its kind of
// operation (or the caller's, if sooner). Errors keep their category; a
// call that ran out of its own deadline is a timeout. An error of an
// operation the service provably never started is marked with
// backends.ErrNotStarted; any other error may belong to an operation that
// happened.
func (c *Client) Execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	limit := c.deadlines.of(req.Op())
	callCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res, err := c.execute(callCtx, req)
	if err != nil && ctx.Err() == nil && callCtx.Err() != nil && backends.CategoryOf(err) == backends.Timeout {
		// Our deadline, not the caller's: say so, keeping whether it started.
		out := backends.WithOp(req.Op(), backends.Errorf(backends.Timeout, "the Approach 2 service did not answer within %s", limit))
		if errors.Is(err, backends.ErrNotStarted) {
			out = backends.NotStarted(out)
		}
		return nil, out
	}
	return res, err
}

func (c *Client) execute(ctx context.Context, req backends.Request) (backends.Result, error) {
	if err := c.checkSize(req); err != nil {
		return nil, backends.NotStarted(err)
	}
	pbReq, err := encodeRequest(req, backends.ProgressFrom(ctx) != nil)
	if err != nil {
		return nil, backends.NotStarted(err)
	}
	if backends.IsShadow(ctx) {
		ctx = metadata.AppendToOutgoingContext(ctx, shadowHeader, "1")
	}
	// No header is waited for before the result: a header's absence would
	// not prove that the operation never started (the service may have
	// started it and lost the link), so only the service's own error says
	// "not started" once the request has left (callError). The service's
	// header comes with its first message.
	stream, err := c.stub.Execute(ctx, pbReq)
	if err != nil {
		return nil, callError(err, false)
	}
	return receive(ctx, req.Op(), stream)
}

// checkSize refuses write_file content that cannot be within the limit
// even base64-encoded, with the answer Approach 1 (and so the service)
// gives, instead of a message too large to send. Content closer to the
// limit is sent: the service decodes it and decides.
func (c *Client) checkSize(req backends.Request) error {
	if w, ok := req.(*backends.WriteFileRequest); ok && len(w.Content) > encodedLen(c.maxFileBytes) {
		return backends.WithOp(req.Op(), backends.Errorf(backends.ResourceExhausted, "content is larger than the %d-byte limit", c.maxFileBytes))
	}
	return nil
}

// Predict asks the service for a shadow prediction of a write another
// backend made (backends.Predictor).
func (c *Client) Predict(ctx context.Context, req backends.Request, primary backends.Result) (*backends.Prediction, error) {
	pbReq, err := encodeRequest(req, false)
	if err != nil {
		return nil, err
	}
	pbRes, err := encodeResult(req.Op(), primary)
	if err != nil {
		return nil, err
	}
	out, err := c.stub.Predict(ctx, &pb.PredictRequest{Operation: pbReq, Primary: pbRes})
	if err != nil {
		e, _, _ := fromStatus(err)
		return nil, e
	}
	return &backends.Prediction{Expected: out.GetExpected(), Found: out.GetFound(), Stale: out.GetStale()}, nil
}

func receive(ctx context.Context, op backends.Op, stream grpc.ServerStreamingClient[pb.OperationEvent]) (backends.Result, error) {
	progress := backends.ProgressFrom(ctx)
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, backends.Errorf(backends.Internal, "the service ended %s without a result", op)
		}
		if err != nil {
			return nil, callError(err, true)
		}
		if p, ok := ev.Event.(*pb.OperationEvent_Progress); ok {
			if progress != nil {
				progress(p.Progress)
			}
			continue
		}
		return decodeResult(op, ev.GetResult())
	}
}

// callError categorises a failed call. sent says whether the request had
// been handed to the connection. Once it had, only the service can say the
// operation never started, in its error (anything else it sent may be lost
// with the link). Before, a failure means the request never left —
// unless the call ended by its deadline or cancellation, which can race
// with the sending, so those stay "may have happened".
func callError(err error, sent bool) error {
	e, started, fromService := fromStatus(err)
	if fromService {
		if !started {
			return backends.NotStarted(e)
		}
		return e
	}
	code := status.Code(err)
	if !sent && code != codes.DeadlineExceeded && code != codes.Canceled {
		return backends.NotStarted(e)
	}
	if code == codes.Canceled {
		e.Message = "the call was cancelled"
	}
	return e
}

func encodeRequest(req backends.Request, progress bool) (*pb.OperationRequest, error) {
	p := req.GetScope().Principal
	out := &pb.OperationRequest{Progress: progress, IdempotencyKey: req.GetScope().IdempotencyKey, Principal: &pb.Principal{
		Project: p.Project, Agent: p.Agent, AuthorName: p.AuthorName, AuthorEmail: p.AuthorEmail}}
	m := out.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(req.Op()))
	if fd == nil || fd.ContainingOneof() == nil {
		return nil, backends.Errorf(backends.InvalidArgument, "operation %q is not supported", req.Op())
	}
	if !utf8.ValidString(out.IdempotencyKey) && req.Op().IsRead() {
		out.IdempotencyKey = "" // reads ignore keys
	} else if !utf8.ValidString(out.IdempotencyKey) {
		return nil, backends.Errorf(backends.InvalidArgument,
			"the idempotency key must be 1 to %d bytes of text without control characters (a UUID is a good choice)", journal.MaxKeyLen)
	}
	if err := toProto(req, m.Mutable(fd).Message()); err != nil {
		var bad *invalidUTF8
		switch {
		case errors.As(err, &bad) && bad.field == "content":
			// Approach 1's answer: binary content travels as base64.
			return nil, backends.Errorf(backends.InvalidArgument, "content is not valid UTF-8; send it with encoding base64")
		case errors.As(err, &bad):
			return nil, backends.Errorf(backends.InvalidArgument, "%s is not valid UTF-8 text", bad.field)
		}
		return nil, backends.Errorf(backends.Internal, "encode %s: %w", req.Op(), err)
	}
	return out, nil
}

func decodeResult(op backends.Op, out *pb.OperationResult) (backends.Result, error) {
	m := out.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("result"))
	if fd == nil || backends.Op(fd.Name()) != op {
		return nil, backends.Errorf(backends.Internal, "the service answered %s with another result", op)
	}
	res := backends.NewResult(op)
	if err := fromProto(m.Get(fd).Message(), res); err != nil {
		return nil, backends.Errorf(backends.Internal, "decode %s: %w", op, err)
	}
	s := out.GetServed()
	*res.GetServed() = backends.Served{Backend: Name.String(), DurationMS: s.GetDurationMs(), WriteSeq: s.GetWriteSeq(),
		Notices: s.GetNotices(), ReadFrom: s.GetReadFrom(), CostUSD: s.GetCostUsd(), Wait: time.Duration(s.GetWaitUs()) * time.Microsecond}
	return res, nil
}
