package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Direction is what a capability lets git do with the remote.
type Direction string

// Directions.
const (
	Fetch Direction = "fetch" // clone, fetch, pull, ls-remote
	Push  Direction = "push"  // push (and the fetches a push needs)
)

// Capability is what one remote operation may do through the relay.
type Capability struct {
	Project   string `json:"project"`
	Workspace string `json:"workspace"`
	// Agent is the agent the operation runs for (the branch policy's
	// prefix names it).
	Agent string `json:"agent,omitempty"`
	// Remote is the repository URL the workspace recorded (normalised,
	// like https://host/owner/repo.git): the only place the relay forwards
	// to.
	Remote string    `json:"remote"`
	Dir    Direction `json:"dir"`
	// Refs, for a push, are the refs it may update (full names, like
	// refs/heads/agent/x); empty: any the relay's policy allows.
	Refs []string `json:"refs,omitempty"`
	// MaxBytes caps the bytes of one transfer (a fetch's response, a
	// push's request); 0 takes the relay's limit.
	MaxBytes int64     `json:"max_bytes,omitempty"`
	Expires  time.Time `json:"expires"`
}

// secretPrefix starts every capability secret, so that scanners and
// people recognise one.
const secretPrefix = "ggcap_"

// Store keeps capabilities by the hash of their secret (never the secret).
// Implementations expire an entry at its capability's Expires.
type Store interface {
	Put(ctx context.Context, id string, c Capability) error
	// Get returns the capability stored under id; ok is false when there
	// is none (never minted, revoked or expired).
	Get(ctx context.Context, id string) (c Capability, ok bool, err error)
	Delete(ctx context.Context, id string) error
}

// ErrNoCapability: the secret names no live capability.
var ErrNoCapability = errors.New("relay: no such capability (revoked, expired or never minted)")

// id is the key a secret is stored under.
func id(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Mint stores c for ttl and returns its secret, for git in the sandbox,
// and a function that revokes it (call it when the operation ends; it is
// safe to call more than once).
func Mint(ctx context.Context, s Store, c Capability, ttl time.Duration) (secret string, revoke func(context.Context) error, err error) {
	if c.Dir != Fetch && c.Dir != Push {
		return "", nil, fmt.Errorf("relay: capability direction %q is neither fetch nor push", c.Dir)
	}
	if c.Remote == "" || c.Project == "" {
		return "", nil, errors.New("relay: a capability needs a project and a remote")
	}
	if ttl <= 0 {
		return "", nil, errors.New("relay: a capability needs a positive lifetime")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("relay: %w", err)
	}
	secret = secretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	c.Expires = time.Now().Add(ttl).UTC()
	key := id(secret)
	if err := s.Put(ctx, key, c); err != nil {
		return "", nil, fmt.Errorf("relay: keep the capability: %w", err)
	}
	var once sync.Once
	var rerr error
	return secret, func(ctx context.Context) error {
		once.Do(func() { rerr = s.Delete(ctx, key) })
		return rerr
	}, nil
}

// Resolve returns the live capability of secret, or ErrNoCapability.
func Resolve(ctx context.Context, s Store, secret string) (Capability, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return Capability{}, ErrNoCapability
	}
	c, ok, err := s.Get(ctx, id(secret))
	if err != nil {
		return Capability{}, fmt.Errorf("relay: read the capability: %w", err)
	}
	if !ok || !time.Now().Before(c.Expires) {
		return Capability{}, ErrNoCapability
	}
	return c, nil
}

// MemoryStore is a Store in this process (one gateway).
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]Capability
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]Capability{}} }

// Put keeps c under id, dropping expired entries.
func (s *MemoryStore) Put(_ context.Context, id string, c Capability) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, v := range s.m {
		if !now.Before(v.Expires) {
			delete(s.m, k)
		}
	}
	s.m[id] = c
	return nil
}

// Get returns the capability under id.
func (s *MemoryStore) Get(_ context.Context, id string) (Capability, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if ok && !time.Now().Before(c.Expires) {
		delete(s.m, id)
		return Capability{}, false, nil
	}
	return c, ok, nil
}

// Delete revokes the capability under id.
func (s *MemoryStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// Len is the number of capabilities kept (tests).
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// encode and decode are the stored form of a capability.
func encode(c Capability) ([]byte, error) { return json.Marshal(c) }

func decode(data []byte) (Capability, error) {
	var c Capability
	err := json.Unmarshal(data, &c)
	return c, err
}
