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
// every key of one operation is named up front. The layout assumes one
// Redis master: a single instance, or the master of a Sentinel set
// reached through go-redis' failover client (which follows failovers;
// the errors of a failover window are unavailable, see rediserr). A
// failover may lose the writes of the last moments before it
// (asynchronous replication): a binding written then may be gone, and the
// sandbox reaper or the next call re-creates it, as after its TTL. Redis
// Cluster is not supported: one operation's keys (a binding, its
// project's set, its sandbox's set) fall in different hash slots, where
// transactions and scripts cannot span them; it would need the keys of a
// project under one hash tag ({<prefix>project}), which puts a project's
// bindings on one shard.
package redisbind

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/rediserr"
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
	// lastSandbox maps a binding's member to the sandbox it named when
	// last read or written here: Get's hint (see getScript). hints counts
	// its entries, roughly, to bound it (noteSandbox).
	lastSandbox sync.Map
	hints       atomic.Int64
}

// maxHints bounds Store.lastSandbox.
const maxHints = 100_000

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

// unavailable wraps a Redis error (rediserr.Wrap): unavailable, also
// for every error a failover produces (READONLY, LOADING, MASTERDOWN, no
// master), or timeout when ctx's deadline cut the call off, or canceled
// when the caller gave up (Redis may well be healthy), or internal for a
// reply that means a bug. Nil and errors that already are *backends.Error
// pass unchanged.
func unavailable(err error) error { return rediserr.Wrap("workspace bindings store (Redis)", err) }

// maxWatchRetries bounds the optimistic-transaction retries of
// DeleteSandbox when concurrent writes keep changing its keys.
const maxWatchRetries = 10

var errContended = fmt.Errorf("gave up after %d attempts: the bindings kept changing", maxWatchRetries)
