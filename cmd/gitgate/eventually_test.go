package main

import (
	"testing"
	"time"
)

// patience bounds every wait for a condition in these tests: generous, so
// that a loaded machine (CI runners, a laptop building something else)
// only makes a test slower, never makes it fail. A test waits for what it
// needs to have happened, never for a fixed time; timing properties are
// measured by benchmarks.
const patience = 2 * time.Minute

// eventually polls cond until it holds and returns how long that took; it
// fails the test if cond does not hold within patience.
func eventually(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	return eventuallyEvery(t, what, 20*time.Millisecond, cond)
}

// eventuallyEvery is eventually polling every interval (for a cond that
// costs a real call).
func eventuallyEvery(t testing.TB, what string, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > patience {
			t.Fatalf("gave up after %s waiting until %s", time.Since(start).Round(time.Millisecond), what)
		}
		time.Sleep(interval)
	}
}
