// Package redisbind is the Redis implementation of sandbox.BindingStore:
// the table of which sandbox holds which workspace, shared by every gateway
// and service process (MemoryBindings is enough only while one process runs
// every backend).
//
// Layout, under a prefix (default "gitgate:"):
//
//	<prefix>binding:<key>      JSON of one binding (key is WorkspaceKey.String())
//	<prefix>bindings:<project> set of the project's binding keys, for List
//	<prefix>sandbox:<id>       set of the binding keys held by sandbox id, for DeleteSandbox
//
// Every key expires after the sandbox idle TTL. Put and Get reset it, as
// using a workspace resets its sandbox's idle time, so a binding lives as
// long as its sandbox could. A binding that holds work a new sandbox could
// not restore (sandbox.Binding.Unsaved) or that is shelved (Binding.Shelf:
// its sandbox is gone and its unsaved work waits in the vault) expires
// after the longer Options.Retention instead (default 7 days): the reaper
// finds it when the sandbox idles out (and shelves its work), and an agent
// whose sandbox died is told what was lost rather than that the workspace
// never existed. A shelved binding belongs to no sandbox set. The sets are refreshed with their members, so they outlive
// them: a project's set is only ever extended, to the longest expiry of
// its members; List drops members whose binding has expired. A sandbox set
// may keep a member whose binding moved to another sandbox (or was
// shelved): DeleteSandbox checks each binding's sandbox before deleting it.
//
// Multi-key updates run in MULTI/EXEC transactions or Lua scripts, and
// every key of one operation is named up front; the layout still assumes a single Redis
// instance (or a primary with replicas), not Redis Cluster, whose
// transactions cannot span the hash slots these keys fall in.
package redisbind

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "gitgate:"

// Options configures a Store.
type Options struct {
	// Prefix starts every Redis key. Empty means DefaultPrefix.
	Prefix string
	// TTL is the sandbox idle TTL: a binding neither stored nor read for
	// this long expires. Required (New panics when it is not positive).
	TTL time.Duration
	// Retention is how long a binding with unsaved work, or shelved (its
	// unsaved work saved to the vault when its sandbox went), lives
	// without being used: a shelved workspace is restored when used within
	// it. If zero, DefaultRetention; never shorter than TTL. Keep the
	// vault's entries at least as long.
	Retention time.Duration
}

// DefaultRetention is Options.Retention when it is zero.
const DefaultRetention = 7 * 24 * time.Hour

// Store is a sandbox.BindingStore kept in Redis. It is safe for concurrent
// use, also by several processes sharing one Redis.
type Store struct {
	client    redis.UniversalClient
	prefix    string
	ttl       time.Duration
	retention time.Duration
}

var _ sandbox.BindingStore = (*Store)(nil)
var _ sandbox.UsageTracker = (*Store)(nil)

// New returns a Store keeping its bindings in client. It panics when
// opts.TTL is not positive: bindings that never expire would outlive the
// sandboxes they name.
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.TTL <= 0 {
		panic("redisbind: Options.TTL must be positive (the sandbox idle TTL)")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	return &Store{client: client, prefix: opts.Prefix, ttl: opts.TTL, retention: max(opts.Retention, opts.TTL)}
}

// ttlFor is how long b lives unused: the idle TTL, or the retention of a
// binding with unsaved or shelved work (getScript decides the same).
func (s *Store) ttlFor(b sandbox.Binding) time.Duration {
	if b.Shelf != "" || b.Unsaved() != "" {
		return s.retention
	}
	return s.ttl
}

func (s *Store) bindingKey(member string) string  { return s.prefix + "binding:" + member }
func (s *Store) projectKey(project string) string { return s.prefix + "bindings:" + project }
func (s *Store) sandboxKey(id string) string      { return s.prefix + "sandbox:" + id }

func encode(b sandbox.Binding) ([]byte, error) { return sandbox.EncodeBinding(b) }

func decode(data string) (sandbox.Binding, error) { return sandbox.DecodeBinding([]byte(data)) }

// unavailable wraps a Redis error: unavailable, or timeout when ctx's
// deadline cut the call off, or canceled when the caller gave up (Redis may
// well be healthy). Nil and errors that already are
// *backends.Error pass unchanged.
func unavailable(err error) error {
	var be *backends.Error
	switch {
	case err == nil || errors.As(err, &be):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return backends.Errorf(backends.Timeout, "workspace bindings store (Redis) did not answer in time: %w", err)
	case errors.Is(err, context.Canceled):
		return backends.Errorf(backends.Canceled, "the caller gave up before the workspace bindings store (Redis) answered: %w", err)
	}
	return backends.Errorf(backends.Unavailable, "workspace bindings store (Redis) is unavailable: %w", err)
}

// maxWatchRetries bounds the optimistic-transaction retries of
// DeleteSandbox when concurrent writes keep changing its keys.
const maxWatchRetries = 10

var errContended = fmt.Errorf("gave up after %d attempts: the bindings kept changing", maxWatchRetries)
