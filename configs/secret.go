// Secrets: a token, password or DSN comes from an environment variable (a
// *_env key) or from a file (its *_file sibling: a Kubernetes Secret
// volume, a Vault agent template, a file a secrets operator keeps in sync
// with AWS Secrets Manager). A file is re-read while the process runs
// (WatchSecrets), so that a rotated secret applies without a restart where
// the consumer reads the current value (Secret.Value) at each use.
//
// Why polling rather than fsnotify: a Kubernetes Secret volume replaces its
// files by swapping the ..data symlink to a new timestamped directory; a
// Vault agent renames a temporary file over the old one or rewrites it in
// place; a secrets operator does either. An inotify watch on the file
// follows the inode it was given and goes silent after such a swap, so a
// watcher must watch the parent directory, re-resolve symlinks and re-arm
// itself after every event, and inotify does not fire at all on some
// network and FUSE file systems. One missed event would leave a stale
// secret for the life of the process. Reading each file again every
// interval (a second by default: a few small reads a second) and comparing
// its content sees every way of replacing it, through any symlink, on any
// file system; kubelet itself takes up to a minute or more to project a
// changed Secret, so the poll adds nothing that matters.
//
// Who follows a rotation without a restart: the projects' git tokens (read
// at each git operation, in the gateway and the service, and by the branch
// cleanup), the Approach 2 token (read at every call; approach2.token_grace
// lets the previous one work both ways while processes catch up), the E2B
// API key (every request), the Redis password (each new connection; open
// ones stay authenticated) and the journal's DSN (the user and password of
// each new connection; open ones keep their session until the pool
// retires them). Who does not: the canary ledger's and the budget and
// branch stores' PostgreSQL pools (their DSN of the start until a restart),
// and the drill's tokens (a drill is one short process that reads them at
// start). Changing anything but the credentials of a DSN (its host, its
// database) needs a restart.

package configs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSecretPoll is how often WatchSecrets re-reads the secret files
// when given no interval.
const DefaultSecretPoll = time.Second

// maxSecretBytes bounds a secret file: a token or a DSN is far smaller;
// anything larger is the wrong file.
const maxSecretBytes = 64 << 10

// Secret is one secret of the configuration: a fixed value from an
// environment variable, or the content of a file that Reload (and
// WatchSecrets) read again, keeping the last good value when the file
// cannot be read. A file's content is used without its leading and
// trailing white space (a newline at the end, as most tools write one).
//
// The value is never part of an error, a log line or the Secret's own
// formatting (String, LogValue): those name the key and the file only.
// Methods are safe for concurrent use, and a nil *Secret has no value.
type Secret struct {
	key  string // the key that set it: approach2.token_file, projects.web.token_env
	path string // the file; "" for a fixed value
	cur  atomic.Pointer[secretState]

	mu      sync.Mutex // serialises Reload and OnChange
	subs    []func(string)
	failing bool // the last read failed (logged once per failing streak)
}

// secretState is one value, with the value it replaced and when.
type secretState struct {
	value, previous string
	replaced        time.Time
}

// FixedSecret is a secret that never changes (from an environment
// variable, named by key).
func FixedSecret(key, value string) *Secret {
	s := &Secret{key: key}
	s.cur.Store(&secretState{value: value})
	return s
}

// OpenSecretFile reads the secret file at path, set by key. A file that is
// missing, unreadable, empty or larger than 64 KiB is an error naming the
// key and the path.
func OpenSecretFile(key, path string) (*Secret, error) {
	s := &Secret{key: key, path: path}
	v, err := readSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	s.cur.Store(&secretState{value: v})
	return s, nil
}

// readSecretFile reads a secret file (through any symlink), refusing an
// empty or oversized one. Errors name the path, never the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("%s is larger than %d bytes: not a secret file", path, maxSecretBytes)
	}
	v := string(bytes.TrimSpace(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// Value is the current value ("" for a nil Secret). It reads memory only:
// call it at each use to follow rotations.
func (s *Secret) Value() string {
	if s == nil {
		return ""
	}
	return s.cur.Load().value
}

// Previous is the value the current one replaced, if it was replaced less
// than grace ago; otherwise "". Consumers that must accept a credential
// both sides of a rotation (the Approach 2 token) use it.
func (s *Secret) Previous(grace time.Duration) string {
	if s == nil {
		return ""
	}
	st := s.cur.Load()
	if st.previous == "" || time.Since(st.replaced) >= grace {
		return ""
	}
	return st.previous
}

// Key is the configuration key that set the secret.
func (s *Secret) Key() string {
	if s == nil {
		return ""
	}
	return s.key
}

// Path is the secret's file, or "" for a fixed value.
func (s *Secret) Path() string {
	if s == nil {
		return ""
	}
	return s.path
}

// String names the secret (its key and file), never its value.
func (s *Secret) String() string {
	if s == nil {
		return "secret(none)"
	}
	if s.path == "" {
		return "secret(" + s.key + ")"
	}
	return "secret(" + s.key + " " + s.path + ")"
}

// GoString is String, so that %#v prints no value either.
func (s *Secret) GoString() string { return s.String() }

// LogValue logs the key and the file, never the value.
func (s *Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", s.Key()), slog.String("path", s.Path()))
}

// OnChange registers fn, called with each new value before Value returns
// it (so that a redactor learns a rotated token before anything can use
// it). fn must not call Reload.
func (s *Secret) OnChange(fn func(value string)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Reload reads the file again and reports whether the value changed. A
// read that fails (a missing, empty or oversized file) keeps the last good
// value and is logged as a warning with the key, the path and the error,
// once until a read succeeds again. A fixed secret never changes.
func (s *Secret) Reload(log *slog.Logger) bool {
	if s == nil || s.path == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := readSecretFile(s.path)
	if err != nil {
		if !s.failing {
			log.Warn("secret file unreadable: keeping the last value", "key", s.key, "path", s.path, "err", err)
		}
		s.failing = true
		return false
	}
	if s.failing {
		log.Info("secret file readable again", "key", s.key, "path", s.path)
		s.failing = false
	}
	old := s.cur.Load()
	if v == old.value {
		return false
	}
	for _, fn := range s.subs {
		fn(v)
	}
	s.cur.Store(&secretState{value: v, previous: old.value, replaced: time.Now()})
	log.Info("secret file changed: new value in use", "key", s.key, "path", s.path)
	return true
}

// WatchSecrets re-reads the file of each secret every interval
// (DefaultSecretPoll if interval <= 0) until ctx ends. Fixed and nil
// secrets are skipped; with no file to watch it returns at once.
func WatchSecrets(ctx context.Context, log *slog.Logger, interval time.Duration, secrets ...*Secret) {
	var files []*Secret
	for _, s := range secrets {
		if s.Path() != "" {
			files = append(files, s)
		}
	}
	if len(files) == 0 {
		return
	}
	if interval <= 0 {
		interval = DefaultSecretPoll
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, s := range files {
				s.Reload(log)
			}
		}
	}
}

// errBothSources refuses a secret given both ways.
var errBothSources = errors.New("set one of them, not both")
