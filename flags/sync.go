package flags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
)

// A fleet of gateways can share one flag source instead of a file: a flagd
// server (or any flagd.sync.v1.FlagSyncService) streams the flags to each
// gateway's in-process flagd evaluator over gRPC. The rules stay the same:
// while the source is not serving (not yet synced, stale after a broken
// stream, in error) every call goes to Approach 1 with a metric and a log
// line, the local kill-switch override works regardless, and a provider
// that failed is restarted. The stream itself is followed by syncClient.

// syncRestartAfter is how long the provider may stay in error before it
// is restarted.
const syncRestartAfter = 5 * time.Second

type syncState struct {
	current  atomic.Pointer[syncClient] // the running provider's sync client
	handlers map[openfeature.EventType]openfeature.EventCallback
	client   *openfeature.Client // for the event handlers

	mu         sync.Mutex
	failedAt   time.Time         // when the provider was first seen failed, zero when it is not
	rolledBack map[string]string // op → the route it had at the source when this gateway rolled it back
	routes     map[string]string // route flag → its definition in the last flags received
}

func (e *Evaluator) openSync() error {
	host, portText, err := net.SplitHostPort(e.cfg.SyncAddr)
	port, perr := strconv.ParseUint(portText, 10, 16)
	if err != nil || perr != nil || host == "" || port == 0 {
		return fmt.Errorf("flags: sync source %q is not host:port", e.cfg.SyncAddr)
	}
	s := &syncState{rolledBack: map[string]string{}, routes: map[string]string{}, client: openfeature.NewClient(e.cfg.Domain)}
	e.sync = s
	s.handlers = map[openfeature.EventType]openfeature.EventCallback{
		openfeature.ProviderReady: handler(func(openfeature.EventDetails) {
			e.cfg.Logger.Info("flag sync source serving", "source", e.cfg.SyncAddr)
		}),
		openfeature.ProviderError: handler(func(d openfeature.EventDetails) { e.sourceDown("error", d.Message) }),
	}
	for t, h := range s.handlers {
		s.client.AddHandler(t, h)
	}
	e.startSync()
	return nil
}

func handler(fn func(openfeature.EventDetails)) openfeature.EventCallback {
	return &fn
}

// startSync (re)starts the provider on the sync source. It does not wait:
// until the first flags arrive the client is not ready, and calls go to
// Approach 1.
func (e *Evaluator) startSync() {
	sc := &syncClient{addr: e.cfg.SyncAddr, selector: e.cfg.SyncSelector, onData: e.sourceData, onChange: func(up bool, err error) {
		if up {
			e.cfg.Logger.Info("flag sync stream up", "source", e.cfg.SyncAddr)
		} else {
			e.sourceDown("disconnected", fmt.Sprint(err))
		}
	}}
	p, err := newFlagdProvider(e.cfg.Logger, flagd.WithInProcessResolver(), flagd.WithCustomSyncProviderAndUri(sc, "grpc://"+e.cfg.SyncAddr))
	if err == nil {
		err = openfeature.SetNamedProvider(e.cfg.Domain, p)
	}
	if err != nil {
		e.cfg.Logger.Warn("flag provider not started; every operation goes to Approach 1", "source", e.cfg.SyncAddr, "err", err)
		return
	}
	e.sync.current.Store(sc)
	e.clientMu.Lock()
	old := e.provider
	e.provider, e.client = p, openfeature.NewClient(e.cfg.Domain)
	e.clientMu.Unlock()
	if old != nil {
		go e.shutdown(old)
	}
	e.ready.Store(true)
}

// checkSync restarts a provider that has been in error for
// syncRestartAfter (syncClient reconnects by itself; an error state, for
// example after flags the provider could not use, does not clear itself).
func (e *Evaluator) checkSync() {
	e.clientMu.RLock()
	client := e.client
	e.clientMu.RUnlock()
	st := openfeature.State("not started") // the provider could not even be set up
	if client != nil {
		st = client.State()
	}
	failed := client == nil || st == openfeature.ErrorState || st == openfeature.FatalState
	s := e.sync
	s.mu.Lock()
	switch {
	case !failed:
		s.failedAt = time.Time{}
	case s.failedAt.IsZero():
		s.failedAt = time.Now()
	}
	restart := failed && time.Since(s.failedAt) >= syncRestartAfter
	if restart {
		s.failedAt = time.Time{}
	}
	s.mu.Unlock()
	if restart {
		e.cfg.Logger.Warn("restarting the flag provider; operations go to Approach 1 until the source serves", "source", e.cfg.SyncAddr, "state", string(st))
		e.startSync()
	}
}

func (e *Evaluator) closeSync() {
	if e.sync == nil {
		return
	}
	for t, h := range e.sync.handlers {
		e.sync.client.RemoveHandler(t, h)
	}
}

func (e *Evaluator) sourceDown(state, msg string) {
	e.cfg.Logger.Warn("flag sync source unusable; every operation goes to Approach 1", "source", e.cfg.SyncAddr, "state", state, "detail", msg)
}

// sourceData notes the route flags of flags received from the source, and
// ends this gateway's own rollback of an operation whose route an operator
// changed there. (flagd's config-change events are not used for this:
// they are delivered asynchronously, and the first one lists every flag.)
func (e *Evaluator) sourceData(flags string) {
	var doc struct {
		Flags map[string]json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal([]byte(flags), &doc); err != nil {
		return // the provider refuses it too, and reports it
	}
	var kill map[string]Flag
	if def, ok := doc.Flags[KillSwitchFlag]; ok {
		var fl Flag
		if json.Unmarshal(def, &fl) == nil {
			kill = map[string]Flag{KillSwitchFlag: fl}
		}
	}
	// The revision is stored last: a Status that shows it shows these
	// flags' kill switch and routes too.
	rev := Revision([]byte(flags)) // Status.Revision: the bytes as sent
	defer e.revision.Store(&rev)
	e.setKillFlag(kill)
	s := e.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.routes)
	for name, def := range doc.Flags {
		var compact bytes.Buffer
		if json.Compact(&compact, def) == nil {
			s.routes[name] = compact.String()
		}
	}
	for op, was := range s.rolledBack {
		if s.routes[RouteFlag(op)] != was {
			delete(s.rolledBack, op)
			e.cfg.Logger.Warn("the source changed the route of an operation this gateway had rolled back; following the source again", "op", op)
		}
	}
}

// RollBackLocally sends op to Approach 1 on this gateway, whatever the
// sync source says, until an operator changes op's route at the source
// (which the gateway cannot edit). It is how automatic rollback works with
// a sync source; with a file, rollback edits the file instead.
func (e *Evaluator) RollBackLocally(op, reason string) error {
	if e.sync == nil {
		return fmt.Errorf("flags: local rollback needs a sync source; edit the flag file instead")
	}
	e.sync.mu.Lock()
	e.sync.rolledBack[op] = e.sync.routes[RouteFlag(op)]
	e.sync.mu.Unlock()
	e.cfg.Logger.Warn("operation rolled back on this gateway until its route changes at the flag source", "op", op, "reason", reason)
	return nil
}

// syncServing reports whether the sync source is serving: the stream is
// up and the provider ready.
func (e *Evaluator) syncServing(client *openfeature.Client) (bool, string) {
	if sc := e.sync.current.Load(); sc == nil || !sc.connected.Load() {
		return false, "disconnected"
	}
	if st := client.State(); st != openfeature.ReadyState {
		return false, strings.ToLower(string(st))
	}
	return true, ""
}

// rolledBack reports whether this gateway rolled op back itself.
func (e *Evaluator) rolledBack(op string) bool {
	if e.sync == nil {
		return false
	}
	e.sync.mu.Lock()
	defer e.sync.mu.Unlock()
	_, ok := e.sync.rolledBack[op]
	return ok
}
