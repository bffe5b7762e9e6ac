// Package gitremote is a small, real git remote served over smart HTTP on
// loopback.
//
// It runs `git http-backend` as a CGI program (net/http/cgi) for bare
// repositories kept under one root directory, and guards every request with
// HTTP Basic auth whose password is the project's git token. `gitgate dev`
// uses it as a demo remote for newcomers, and tests across the project use it
// to clone, pull and push against a remote that requires the token.
//
// Besides serving, a Server can create repositories (CreateRepo), commit
// directly into them as if someone else had pushed (CommitFile), read refs
// (Ref), and report what it served (Pushes, Requests). The token never
// appears in log lines or request records.
package gitremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Default values used when the corresponding Config field is empty.
const (
	DefaultAddr    = "127.0.0.1:0"
	DefaultGitPath = "/usr/bin/git"
)

// shutdownTimeout bounds how long Close waits for in-flight requests before
// it drops their connections.
const shutdownTimeout = 30 * time.Second

// Config configures a Server.
type Config struct {
	// Root is the directory holding the bare repositories, one "<name>.git"
	// directory each. Required; it is created if missing.
	Root string
	// Username is the HTTP Basic auth user name accepted. If empty, any
	// user name is accepted (only the token is checked).
	Username string
	// Token is the password every request must carry (the project's git
	// token). If empty, auth is disabled: anyone may read AND write.
	Token string
	// ReadToken, if set, is a second password that may fetch but not push
	// (a read-only token): receive-pack requests carrying it get 403.
	ReadToken string
	// Addr is the TCP listen address. If empty, DefaultAddr ("127.0.0.1:0",
	// a free loopback port) is used.
	Addr string
	// GitPath is the absolute path of the git executable. If empty,
	// DefaultGitPath ("/usr/bin/git") is used.
	GitPath string
	// Logger receives diagnostics (requests at Debug, git's stderr at Warn).
	// If nil, nothing is logged.
	Logger *slog.Logger
	// BeforeReceivePack, if set, is called when a push's pack arrives,
	// before the refs are updated; tests use it to hold a push in flight
	// (for example to kill the pushing process meanwhile).
	BeforeReceivePack func(repo string)
}

// Server is a git smart-HTTP remote. Create it with New, then Start it; Close
// it when done. Its methods are safe for concurrent use. A Server must not be
// used after Close.
type Server struct {
	cfg     Config
	log     *slog.Logger
	scratch string // private temp dir: CGI/git HOME and temporary index files
	home    string // empty directory used as HOME for every git process
	handler http.Handler

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	done     chan struct{} // closed when the Serve goroutine returns
	pushes   map[string]int
	rate     uploadRate // fetch pacing (SetUploadRate)
	requests []RequestRecord
	repoMu   map[string]*sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, fills in defaults and prepares a Server. It creates
// cfg.Root if needed and a private scratch directory (removed by Close), but
// does not listen; call Start for that.
func New(cfg Config) (*Server, error) {
	if err := normalize(&cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("gitremote: create root: %w", err)
	}
	scratch, err := os.MkdirTemp("", "gitremote-")
	if err != nil {
		return nil, fmt.Errorf("gitremote: create scratch dir: %w", err)
	}
	home := filepath.Join(scratch, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		_ = os.RemoveAll(scratch)
		return nil, fmt.Errorf("gitremote: create home dir: %w", err)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, scratch: scratch, home: home,
		pushes: map[string]int{}, repoMu: map[string]*sync.Mutex{},
	}
	s.handler = s.routes()
	return s, nil
}

// normalize applies defaults to cfg and checks it.
func normalize(cfg *Config) error {
	if cfg.Root == "" {
		return errors.New("gitremote: Config.Root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return fmt.Errorf("gitremote: resolve root: %w", err)
	}
	cfg.Root = root
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.GitPath == "" {
		cfg.GitPath = DefaultGitPath
	}
	if !filepath.IsAbs(cfg.GitPath) {
		return fmt.Errorf("gitremote: Config.GitPath %q is not absolute", cfg.GitPath)
	}
	if _, err := os.Stat(cfg.GitPath); err != nil {
		return fmt.Errorf("gitremote: git executable: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Start listens on Config.Addr and serves in a background goroutine. It
// returns once the listener is open, so URL is valid afterwards.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("gitremote: server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gitremote: listen: %w", err)
	}
	s.ln, s.done = ln, make(chan struct{})
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.serve(s.srv, ln, s.done)
	s.log.Info("git remote listening", "url", "http://"+ln.Addr().String(), "root", s.cfg.Root)
	return nil
}

func (s *Server) serve(srv *http.Server, ln net.Listener, done chan<- struct{}) {
	defer close(done)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("git remote stopped", "err", err)
	}
}

// URL returns the base URL of the running server, e.g.
// "http://127.0.0.1:41234" (no trailing slash), or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// RepoURL returns the clone URL of repository name: URL()+"/"+name+".git".
func (s *Server) RepoURL(name string) string {
	return s.URL() + "/" + name + ".git"
}

// Close stops the server, waiting (up to 30s) for in-flight requests and
// their git processes, and removes the scratch directory. Repositories under
// Root are kept. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		srv, done := s.srv, s.done
		s.mu.Unlock()
		var errs []error
		if srv != nil {
			errs = append(errs, shutdown(srv))
			<-done
		}
		errs = append(errs, os.RemoveAll(s.scratch))
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("gitremote: close: %w", err)
		}
	})
	return s.closeErr
}

// shutdown stops srv gracefully, forcing it closed after shutdownTimeout.
func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return errors.Join(err, srv.Close())
	}
	return nil
}

// logWriter turns each write (a chunk of a child's stderr) into a log line.
type logWriter struct {
	log *slog.Logger
	msg string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn(w.msg, "stderr", string(p))
	return len(p), nil
}

var _ io.Writer = logWriter{}
