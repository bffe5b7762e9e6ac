// Package filelock is a lock.Locker for the processes of one machine: each
// key is a file under a directory, locked with flock(2), so that several
// gitgate processes sharing a state directory (a gateway and the stdio
// processes an MCP client starts) serialise their writes per workspace
// without Redis.
//
// The lock file of a key is named after the sha256 of the key, so any key
// maps to a safe file name. Its first bytes hold the key's fence counter,
// read, incremented and written back (and fsynced) while the lock is held,
// so fences are strictly increasing across processes and restarts. Lock
// files are never deleted: deleting a file another process has open and is
// about to lock would let two processes hold "the same" lock.
//
// The kernel drops a flock when the process holding it dies, so a crashed
// holder never leaves a key locked. A lease cannot be lost while its
// process lives: Lost returns nil.
//
// Why not a library (github.com/gofrs/flock, rogpeppe/go-internal's
// lockedfile): they wrap the same flock(2) call but keep no fence counter,
// and gofrs/flock's context-aware TryLockContext is the same polling loop
// as Acquire below; the few lines here are all that is needed.
package filelock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/pause"
)

// Options configures a Locker. The zero value is usable.
type Options struct {
	// MaxPoll is the longest pause between two attempts while a key is
	// held elsewhere; pauses start at a millisecond and double up to it.
	// Zero means 20ms.
	MaxPoll time.Duration
}

// DefaultMaxPoll is the default of Options.MaxPoll.
const DefaultMaxPoll = 20 * time.Millisecond

// Locker grants leases backed by lock files in a directory.
type Locker struct {
	dir  string
	opts Options
}

var _ lock.Locker = (*Locker)(nil)

// New returns a Locker keeping its lock files in dir, which is created
// (mode 0700) if missing.
func New(dir string, opts Options) (*Locker, error) {
	if dir == "" {
		return nil, errors.New("filelock: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filelock: create the lock directory: %w", err)
	}
	if opts.MaxPoll <= 0 {
		opts.MaxPoll = DefaultMaxPoll
	}
	return &Locker{dir: dir, opts: opts}, nil
}

// fenceWidth is the size of the fence record at the start of a lock file:
// 20 decimal digits (any int64) and a newline, always rewritten whole.
const fenceWidth = 21

// path returns the lock file of key.
func (l *Locker) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(l.dir, hex.EncodeToString(sum[:16])+".lock")
}

// Acquire waits until key is free or ctx ends. A wait that ends with ctx
// returns a timeout (deadline) or unavailable (cancelled) error, as
// lock.Memory does; a file system failure is internal.
func (l *Locker) Acquire(ctx context.Context, key string) (lock.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, waitError(err)
	}
	f, err := os.OpenFile(l.path(key), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, backends.Errorf(backends.Internal, "cannot open the workspace lock file: %w", err)
	}
	if err := l.lock(ctx, f); err != nil {
		_ = f.Close()
		return nil, err
	}
	fence, err := bumpFence(f)
	if err != nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
		return nil, backends.Errorf(backends.Internal, "cannot advance the workspace lock's fence: %w", err)
	}
	return &lease{f: f, fence: fence}, nil
}

// lock takes the exclusive flock on f, polling with a growing pause so that
// ctx is honoured without a goroutine blocked in the kernel.
func (l *Locker) lock(ctx context.Context, f *os.File) error {
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return backends.Errorf(backends.Internal, "cannot lock the workspace lock file: %w", err)
		}
		if !pause.For(ctx, wait) {
			return waitError(ctx.Err())
		}
		wait = min(2*wait, l.opts.MaxPoll)
	}
}

// bumpFence reads the fence record of the locked file f, increments it and
// writes it back durably.
func bumpFence(f *os.File) (int64, error) {
	buf := make([]byte, fenceWidth)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	var fence int64
	if s := strings.TrimSpace(string(buf[:n])); s != "" {
		if fence, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, fmt.Errorf("the fence record %q is corrupt: %w", s, err)
		}
	}
	fence++
	rec := fmt.Sprintf("%020d\n", fence)
	if _, err := f.WriteAt([]byte(rec), 0); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return fence, nil
}

func waitError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &backends.Error{Category: backends.Timeout, Message: "timed out waiting for the workspace lock (another operation on this workspace is running)", Err: err}
	}
	if errors.Is(err, context.Canceled) { // the caller gave up: not an outage
		return &backends.Error{Category: backends.Canceled, Message: "cancelled while waiting for the workspace lock", Err: err}
	}
	return &backends.Error{Category: backends.Unavailable, Message: "cancelled while waiting for the workspace lock", Err: err}
}

// lease is a held flock.
type lease struct {
	f     *os.File
	fence int64
	once  sync.Once
}

// Fence returns the fence taken with the grant.
func (le *lease) Fence() int64 { return le.fence }

// Lost returns nil: a flock is held until released or its process exits.
func (le *lease) Lost() <-chan struct{} { return nil }

// Release unlocks and closes the lock file; releasing again is harmless.
func (le *lease) Release(context.Context) error {
	var err error
	le.once.Do(func() {
		err = syscall.Flock(int(le.f.Fd()), syscall.LOCK_UN)
		if cerr := le.f.Close(); err == nil {
			err = cerr
		}
	})
	if err != nil {
		return backends.Errorf(backends.Internal, "cannot release the workspace lock file: %w", err)
	}
	return nil
}
