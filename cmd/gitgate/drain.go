package main

import (
	"net/http"
	"sync/atomic"
	"time"
)

// drainState is whether the gateway drains: once a shutdown starts, the
// admin listener's /readyz answers 503 "draining" so that load balancers
// turn traffic away while the gateway still serves the calls they send.
type drainState struct{ on atomic.Bool }

// start marks the gateway draining.
func (d *drainState) start() { d.on.Store(true) }

// readyz wraps the admin endpoints h: while draining, GET (and HEAD)
// /readyz answer 503 "not ready: draining" without asking h's readiness;
// every other request goes to h.
func (d *drainState) readyz(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.on.Load() && r.URL.Path == "/readyz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Error(w, "not ready: draining", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// closeAfter wraps the MCP handler h: while draining, every answer carries
// "Connection: close", so the server closes each connection right after
// its answer and the client reconnects (to another gateway once the load
// balancer's check saw the 503). Connections idle when the drain starts
// stay open until the listener closes: closing them at once (as
// http.Server.SetKeepAlivesEnabled(false) does) races a client that is
// sending on one just then, and that client's POST fails with a
// connection reset it cannot safely retry.
func (d *drainState) closeAfter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.on.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// turnAway starts the drain of a gateway serving MCP: /readyz answers 503
// from now on, every MCP answer closes its connection (closeAfter), and MCP
// is still served for delay. It returns early with the error of a listener
// that failed meanwhile (errc), nil otherwise.
func (a *gatewayRoot) turnAway(d *drainState, delay time.Duration, errc <-chan error) error {
	d.start()
	if delay <= 0 {
		return nil
	}
	a.log.Info("draining: not ready, still serving while the load balancer turns traffic away", "process", "gateway",
		"drain_delay", delay.String())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-errc:
		return err
	}
}
