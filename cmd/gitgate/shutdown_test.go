package main

import (
	"syscall"
	"testing"

	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestServiceLogsItsShutdown: `gitgate backend` stopped by SIGTERM logs,
// at info level, the start of its shutdown with the signal and the calls
// in flight, and its exit with how long the shutdown took; every line of
// its standard error is a slog record. (`gitgate dev`, the gateway and the
// in-process service, is checked the same way by TestDevCommand.)
func TestServiceLogsItsShutdown(t *testing.T) {
	t.Parallel() // it mostly waits for the service's drain on SIGTERM
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	_, proc := w.startBackend(t)
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.backendWait(); err != nil {
		t.Fatalf("gitgate backend after SIGTERM: %v", err)
	}
	var shutting, stopped map[string]any
	for _, l := range slogLines(t, w.logs.String()) {
		if l["process"] == "approach2 service" && l["msg"] == "shutting down" {
			shutting = l
		}
		if l["process"] == "approach2 service" && l["msg"] == "stopped" {
			stopped = l
		}
	}
	if shutting == nil || shutting["level"] != "INFO" || shutting["reason"] != "terminated signal received" || shutting["in_flight"] != 0.0 {
		t.Errorf("no info line for the start of the shutdown with the signal and the calls in flight: %v", shutting)
	}
	if stopped == nil || stopped["level"] != "INFO" || stopped["took"] == nil || stopped["in_flight_at_start"] != 0.0 || stopped["in_flight_left"] != 0.0 {
		t.Errorf("no info line for the exit with its figures: %v", stopped)
	}
}
