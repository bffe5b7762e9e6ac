// Package testkit holds the few helpers the tests of every package share:
// waiting for a condition instead of for a fixed time, a log sink safe for
// concurrent writers, and the benchmarks' load driver and statistics
// (calls per second from parallel workers, rates compared in alternating
// rounds, percentiles). It imports nothing of gitgate, so that any
// package's tests can use it.
package testkit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Patience bounds every wait for a condition: generous, so that a loaded
// machine (CI sharing two cores, a laptop building something else) only
// makes a test slower, never makes it fail. A test waits for what it
// needs to have happened, never for a fixed time; timing properties are
// measured by benchmarks.
const Patience = 2 * time.Minute

// Eventually polls cond every 20 ms until it holds and returns how long
// that took; it fails the test if cond does not hold within Patience.
func Eventually(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	return EventuallyEvery(t, what, 20*time.Millisecond, cond)
}

// EventuallyEvery is Eventually polling every interval (for a cond that
// costs a real call).
func EventuallyEvery(t testing.TB, what string, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return poll(t, what, interval, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// EventuallyNil is Eventually for a check that says what is still missing:
// it polls check every 20 ms until it returns nil, and on giving up it
// reports check's last error (the events seen so far, the goroutines still
// running) beside what it waited for.
func EventuallyNil(t testing.TB, what string, check func() error) time.Duration {
	t.Helper()
	return poll(t, what, 20*time.Millisecond, check)
}

// errNotYet is a false cond of Eventually: it has nothing more to report.
var errNotYet = errors.New("not yet")

func poll(t testing.TB, what string, interval time.Duration, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if waited := time.Since(start); waited > Patience {
			if errors.Is(err, errNotYet) {
				t.Fatalf("gave up after %s waiting until %s", waited.Round(time.Millisecond), what)
			}
			t.Fatalf("gave up after %s waiting until %s: %v", waited.Round(time.Millisecond), what, err)
		}
		time.Sleep(interval)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers: a log sink for
// servers and loggers whose output a test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WriteTemp writes content to a file named name in a new temporary
// directory of t and returns its path.
func WriteTemp(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
