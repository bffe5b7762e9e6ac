package flags

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	syncv1grpc "buf.build/gen/go/open-feature/flagd/grpc/go/flagd/sync/v1/syncv1grpc"
	syncv1 "buf.build/gen/go/open-feature/flagd/protocolbuffers/go/flagd/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SyncServer serves a flag file as a flagd sync source
// (flagd.sync.v1.FlagSyncService), so that a fleet of gateways follows one
// file kept on one machine (`gitgate flags serve`): each gateway's
// in-process flagd evaluator receives the flags and every change to them.
// Only a valid file is served. While the file is missing or invalid, open
// streams are ended and new ones refused, so the gateways' flags go stale
// and they send everything to Approach 1, as they would with the file.
type SyncServer struct {
	syncv1grpc.UnimplementedFlagSyncServiceServer
	path string
	ops  []string
	log  *slog.Logger

	mu      sync.Mutex
	current string // the valid flags being served, "" when there are none
	why     string // why there are none
	subs    map[chan struct{}]bool
}

// NewSyncServer returns a server for the flag file at path, validated
// against ops.
func NewSyncServer(path string, ops []string, log *slog.Logger) *SyncServer {
	if log == nil {
		log = slog.Default()
	}
	s := &SyncServer{path: path, ops: ops, log: log, subs: map[chan struct{}]bool{}}
	s.reload()
	return s
}

// Register adds the service to g.
func (s *SyncServer) Register(g *grpc.Server) { syncv1grpc.RegisterFlagSyncServiceServer(g, s) }

// Watch re-reads the file every interval until ctx ends, telling the
// streams about each change.
func (s *SyncServer) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reload()
		}
	}
}

func (s *SyncServer) reload() {
	data, err := os.ReadFile(s.path)
	var f *File
	if err == nil {
		f, err = Load(s.path)
	}
	if err == nil {
		err = f.Validate(s.ops)
	}
	next, why := string(data), ""
	if err != nil {
		next, why = "", err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if next == s.current && why == s.why {
		return
	}
	s.current, s.why = next, why
	if why != "" {
		s.log.Warn("flag file unusable; ending the gateways' flag streams (they go to Approach 1)", "file", s.path, "err", why)
	} else {
		s.log.Info("serving flags", "file", s.path, "streams", len(s.subs))
	}
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending for this stream
		}
	}
}

func (s *SyncServer) snapshot() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == "" {
		return "", status.Error(codes.Unavailable, "the flag file is not usable: "+s.why)
	}
	return s.current, nil
}

// SyncFlags streams the flags now and after every change.
func (s *SyncServer) SyncFlags(_ *syncv1.SyncFlagsRequest, stream grpc.ServerStreamingServer[syncv1.SyncFlagsResponse]) error {
	changed := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[changed] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, changed)
		s.mu.Unlock()
	}()
	for {
		flags, err := s.snapshot()
		if err != nil {
			return err
		}
		if err := stream.Send(&syncv1.SyncFlagsResponse{FlagConfiguration: flags}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-changed:
		}
	}
}

// FetchAllFlags returns the flags being served.
func (s *SyncServer) FetchAllFlags(context.Context, *syncv1.FetchAllFlagsRequest) (*syncv1.FetchAllFlagsResponse, error) {
	flags, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	return &syncv1.FetchAllFlagsResponse{FlagConfiguration: flags}, nil
}
