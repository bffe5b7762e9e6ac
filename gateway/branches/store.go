package branches

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Pushed is a branch gitgate pushed for an agent: the last push wins.
// The remote's tip equal to Commit means nobody else pushed on top.
type Pushed struct {
	Project   string    `json:"project"`
	Agent     string    `json:"agent"`
	Workspace string    `json:"workspace,omitempty"`
	URL       string    `json:"url"` // never with credentials
	Branch    string    `json:"branch"`
	Commit    string    `json:"commit"`
	At        time.Time `json:"at"` // the last push
}

// Key identifies a pushed branch: one per project, remote and branch
// (none of which holds a space).
func (p Pushed) Key() string { return p.Project + " " + p.URL + " " + p.Branch }

// Deletion records one branch gitgate deleted from a remote: enough to
// restore it (Commit is kept on the remote under KeepRef).
type Deletion struct {
	ID        string    `json:"id"`
	Project   string    `json:"project"`
	Agent     string    `json:"agent"`
	Workspace string    `json:"workspace,omitempty"`
	URL       string    `json:"url"`
	Branch    string    `json:"branch"`
	Commit    string    `json:"commit"`
	Reason    string    `json:"reason"` // merged | stale | agent
	By        string    `json:"by"`     // "cleanup" or the agent that asked
	At        time.Time `json:"at"`
	KeepRef   string    `json:"keep_ref"` // the remote ref holding Commit until restored
	// Call identifies the agent's delete_branch call that made it (a hash
	// of its idempotency key; "" without one or for the cleanup's), so
	// that a retry of that call is answered with this deletion.
	Call string `json:"call,omitempty"`
	// RestoredAt is set once the branch was pushed back.
	RestoredAt *time.Time `json:"restored_at,omitempty"`
}

// Store keeps the pushed branches and the deletions. A fleet of gateways
// shares one (PostgreSQL, Redis); a single machine may use a file.
type Store interface {
	// RecordPush adds or replaces the record of p's branch.
	RecordPush(ctx context.Context, p Pushed) error
	// Pushed lists the records of project ("" for every project).
	Pushed(ctx context.Context, project string) ([]Pushed, error)
	// Forget drops the record with key (Pushed.Key); no error when absent.
	Forget(ctx context.Context, key string) error
	// RecordDeletion adds d.
	RecordDeletion(ctx context.Context, d Deletion) error
	// Deletions lists every deletion, oldest first.
	Deletions(ctx context.Context) ([]Deletion, error)
	// MarkRestored sets RestoredAt of deletion id.
	MarkRestored(ctx context.Context, id string, at time.Time) error
}

// newID returns a deletion id: the time and random bits, sortable.
func newID(at time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return at.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// findDeletion returns the deletion with id.
func findDeletion(ctx context.Context, s Store, id string) (Deletion, bool, error) {
	all, err := s.Deletions(ctx)
	if err != nil {
		return Deletion{}, false, err
	}
	for _, d := range all {
		if d.ID == id {
			return d, true, nil
		}
	}
	return Deletion{}, false, nil
}
