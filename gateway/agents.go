package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/gitgate/gitgate/backends"
)

// Agent is one configured agent. Its bearer token is stored only as a
// SHA-256 hash.
type Agent struct {
	Name        string
	Project     string
	TokenSHA256 string // lower-case hex
	AuthorName  string
	AuthorEmail string
}

// Principal returns the principal the agent acts as.
func (a Agent) Principal() backends.Principal {
	return backends.Principal{Project: a.Project, Agent: a.Name, AuthorName: a.AuthorName, AuthorEmail: a.AuthorEmail}
}

// Directory maps bearer tokens to agents.
type Directory struct {
	byHash map[[sha256.Size]byte]Agent
	byName map[string]Agent
}

// NewDirectory indexes agents, refusing duplicate names or token hashes.
func NewDirectory(agents []Agent) (*Directory, error) {
	d := &Directory{byHash: map[[sha256.Size]byte]Agent{}, byName: map[string]Agent{}}
	for i, a := range agents {
		raw, err := hex.DecodeString(strings.ToLower(a.TokenSHA256))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("agents[%d].token_sha256: must be 64 hex characters (sha256 of the agent's token)", i)
		}
		h := [sha256.Size]byte(raw)
		if _, dup := d.byHash[h]; dup {
			return nil, fmt.Errorf("agents[%d].token_sha256: the same token is configured for two agents", i)
		}
		if _, dup := d.byName[a.Name]; dup {
			return nil, fmt.Errorf("agents[%d].name: agent %q is configured twice", i, a.Name)
		}
		d.byHash[h], d.byName[a.Name] = a, a
	}
	return d, nil
}

// HashToken returns the hex SHA-256 of a token, as stored in the config.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Authenticate returns the agent whose token this is. The lookup is by hash;
// the final comparison is constant-time.
func (d *Directory) Authenticate(token string) (Agent, bool) {
	if token == "" {
		return Agent{}, false
	}
	h := sha256.Sum256([]byte(token))
	a, ok := d.byHash[h]
	if !ok {
		return Agent{}, false
	}
	want, _ := hex.DecodeString(a.TokenSHA256)
	return a, subtle.ConstantTimeCompare(h[:], want) == 1
}

// Agent returns the named agent (for stdio, which runs as one agent).
func (d *Directory) Agent(name string) (Agent, bool) {
	a, ok := d.byName[name]
	return a, ok
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated principal.
func WithPrincipal(ctx context.Context, p backends.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated principal of ctx.
func PrincipalFrom(ctx context.Context) (backends.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(backends.Principal)
	return p, ok
}
