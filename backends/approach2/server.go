// Package approach2 is the service layer: a gRPC GitService that runs every
// operation of the interface in its own sandboxes, and the client the
// gateway uses to call it (a backends.Executor like Approach 1).
package approach2

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	pb "github.com/gitgate/gitgate/backends/approach2/approach2pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Name is the backend name reported in results, logs and metrics.
const Name = backends.Approach2

// shadowHeader marks a call as shadow work (backends.WithShadow), which the
// service runs at the lowest CPU priority.
const shadowHeader = "gitgate-shadow"

// ServiceName is the GitService's full gRPC name, under which the
// standard health service reports its status too.
const ServiceName = "gitgate.approach2.v1.GitService"

// KeepaliveMinTime is the shortest interval between the client's keepalive
// pings the service accepts (half the client's KeepaliveTime, for slack).
// A client pinging more often gets GOAWAY too_many_pings.
const KeepaliveMinTime = KeepaliveTime / 2

// ServerConfig configures a Server.
type ServerConfig struct {
	// Engine runs the operations (the same git engine as Approach 1, with
	// the service's own sandboxes, locks and journal). Required.
	Engine backends.Executor
	// Predictor makes shadow predictions (the service's engine, without
	// the journal: a prediction changes nothing). If nil, Predict is
	// unimplemented.
	Predictor backends.Predictor
	// Token is the bearer token the gateway must present. Required unless
	// Tokens is set.
	Token string
	// Tokens, if set, is read at every call instead of Token: a call
	// presenting the current token, or the previous one within the
	// rotation's grace window, is accepted (see Tokens).
	Tokens Tokens
	// MaxFileBytes and MaxOutputBytes are the limits the engine enforces
	// (limits.max_file_bytes, limits.max_output_bytes; zero: the defaults).
	// They size the largest message the service accepts (MaxMessageBytes),
	// so that every write_file the engine allows arrives and the engine,
	// not gRPC, answers one above its limit.
	MaxFileBytes, MaxOutputBytes int
	// MaxConnectionAge, when positive, sends each client connection a
	// GOAWAY after about this long (gRPC adds ±10 % jitter); the calls on
	// it finish (no grace limit), and the client reconnects, resolving its
	// target again: a gateway dialling dns:/// then finds replicas added
	// since. Zero keeps connections as long as they live.
	MaxConnectionAge time.Duration
	Logger           *slog.Logger // if nil, slog.Default()
}

// Server implements GitService.
type Server struct {
	pb.UnimplementedGitServiceServer
	cfg ServerConfig
}

// NewServer returns a Server.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg}
}

// Register adds the service to s.
func (s *Server) Register(g *grpc.Server) { pb.RegisterGitServiceServer(g, s) }

// ServerOptions returns the interceptors that guard every method with the
// gateway's token, the message size the configured limits need and the
// keepalive policy that lets the client ping as often as it does (also
// between calls); pass them to grpc.NewServer.
func (s *Server) ServerOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.ChainStreamInterceptor(s.AuthInterceptor), grpc.ChainUnaryInterceptor(s.UnaryAuthInterceptor),
		grpc.MaxRecvMsgSize(MaxMessageBytes(s.cfg.MaxFileBytes, s.cfg.MaxOutputBytes)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveMinTime, PermitWithoutStream: true})}
	if s.cfg.MaxConnectionAge > 0 {
		// MaxConnectionAgeGrace stays infinite: a clone may run for
		// minutes, and it is never cut for the sake of rebalancing.
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: s.cfg.MaxConnectionAge}))
	}
	return opts
}

// UnaryAuthInterceptor is AuthInterceptor for unary methods (Predict).
func (s *Server) UnaryAuthInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, "/gitgate.") && !s.authorised(ctx) {
		return nil, toStatus(backends.Errorf(backends.Unauthenticated, "the gateway's service token is missing or wrong"), false)
	}
	return handler(ctx, req)
}

// AuthInterceptor refuses calls without the gateway's bearer token (health
// and reflection stay open for probes and discovery).
func (s *Server) AuthInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, "/gitgate.") && !s.authorised(ss.Context()) {
		return toStatus(backends.Errorf(backends.Unauthenticated, "the gateway's service token is missing or wrong"), false)
	}
	return handler(srv, ss)
}

func (s *Server) authorised(ctx context.Context) bool {
	return presentsToken(ctx, tokensOr(s.cfg.Tokens, s.cfg.Token))
}

// Execute runs one operation; see the proto.
func (s *Server) Execute(req *pb.OperationRequest, stream grpc.ServerStreamingServer[pb.OperationEvent]) error {
	goReq, err := decodeRequest(req)
	if err != nil {
		return toStatus(err, false)
	}
	ctx := stream.Context()
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(shadowHeader)) > 0 {
		ctx = backends.WithShadow(ctx)
	}
	if req.GetProgress() {
		ctx = backends.WithProgress(ctx, progressSender(stream))
	}
	res, err := s.cfg.Engine.Execute(ctx, goReq)
	if err != nil {
		// An engine's refusal before it started anything (admission at
		// capacity, say) keeps its mark across the wire: the gateway
		// may then fall back for it as for a call that never arrived.
		return toStatus(err, !errors.Is(err, backends.ErrNotStarted))
	}
	out, err := encodeResult(goReq.Op(), res)
	if err != nil {
		return toStatus(err, true)
	}
	return stream.Send(&pb.OperationEvent{Event: &pb.OperationEvent_Result{Result: out}})
}

// Predict makes a shadow prediction; see the proto.
func (s *Server) Predict(ctx context.Context, req *pb.PredictRequest) (*pb.Prediction, error) {
	if s.cfg.Predictor == nil {
		return nil, status.Error(codes.Unimplemented, "approach2: this service makes no predictions")
	}
	goReq, err := decodeRequest(req.GetOperation())
	if err != nil {
		return nil, toStatus(err, false)
	}
	primary, err := decodeResult(goReq.Op(), req.GetPrimary())
	if err != nil {
		return nil, toStatus(backends.Errorf(backends.InvalidArgument, "primary result: %w", err), false)
	}
	p, err := s.cfg.Predictor.Predict(backends.WithShadow(ctx), goReq, primary)
	if err != nil {
		return nil, toStatus(err, true)
	}
	return &pb.Prediction{Expected: p.Expected, Found: p.Found, Stale: p.Stale}, nil
}

// progressSender forwards progress lines; sends are serialised because a
// stream allows one sender at a time.
func progressSender(stream grpc.ServerStreamingServer[pb.OperationEvent]) backends.ProgressFunc {
	var mu sync.Mutex
	return func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		_ = stream.Send(&pb.OperationEvent{Event: &pb.OperationEvent_Progress{Progress: msg}})
	}
}

// decodeRequest turns the oneof operation into the matching Go request.
func decodeRequest(req *pb.OperationRequest) (backends.Request, error) {
	m := req.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("operation"))
	if fd == nil {
		return nil, backends.Errorf(backends.InvalidArgument, "no operation in the request")
	}
	goReq := backends.NewRequest(backends.Op(fd.Name()))
	if goReq == nil {
		return nil, backends.Errorf(backends.InvalidArgument, "operation %q is not supported", fd.Name())
	}
	if err := fromProto(m.Get(fd).Message(), goReq); err != nil {
		return nil, backends.Errorf(backends.Internal, "decode %s: %w", fd.Name(), err)
	}
	p := req.GetPrincipal()
	goReq.GetScope().Principal = backends.Principal{Project: p.GetProject(), Agent: p.GetAgent(),
		AuthorName: p.GetAuthorName(), AuthorEmail: p.GetAuthorEmail()}
	goReq.GetScope().IdempotencyKey = req.GetIdempotencyKey()
	return goReq, nil
}

// encodeResult puts a Go result into the oneof field named after op.
func encodeResult(op backends.Op, res backends.Result) (*pb.OperationResult, error) {
	s := res.GetServed()
	out := &pb.OperationResult{Served: &pb.Served{Backend: Name.String(), DurationMs: s.DurationMS, WriteSeq: s.WriteSeq,
		Notices: s.Notices, ReadFrom: s.ReadFrom, CostUsd: s.CostUSD, WaitUs: s.Wait.Microseconds()}}
	m := out.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(op))
	if fd == nil {
		return nil, backends.Errorf(backends.Internal, "no result message for %s", op)
	}
	if err := toProto(res, m.Mutable(fd).Message()); err != nil {
		return nil, backends.Errorf(backends.Internal, "encode %s: %w", op, err)
	}
	return out, nil
}
