package branches

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/internal/atomicfile"
)

// FileStore is a Store in one JSON file, for the processes of one machine
// (flock(2) serialises them).
type FileStore struct {
	path string
}

var _ Store = (*FileStore)(nil)

// fileState is the file's content.
type fileState struct {
	Pushed    map[string]Pushed `json:"pushed"`
	Deletions []Deletion        `json:"deletions"`
}

// OpenFileStore returns the store kept in dir/branches.json.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("branches: %w", err)
	}
	return &FileStore{path: filepath.Join(dir, "branches.json")}, nil
}

// update runs fn on the state under the lock, writing it back when
// write is true (and fn succeeded).
func (s *FileStore) update(write bool, fn func(*fileState) error) error {
	var fnErr error
	err := atomicfile.Update(s.path, 0o600, func(st *fileState) {
		if st.Pushed == nil {
			st.Pushed = map[string]Pushed{}
		}
	}, func(st *fileState) (bool, error) {
		fnErr = fn(st)
		return write && fnErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("branches: %w", err)
	}
	return fnErr // as fn returned it
}

// RecordPush implements Store.
func (s *FileStore) RecordPush(_ context.Context, p Pushed) error {
	return s.update(true, func(st *fileState) error { st.Pushed[p.Key()] = p; return nil })
}

// Pushed implements Store.
func (s *FileStore) Pushed(_ context.Context, project string) ([]Pushed, error) {
	var out []Pushed
	err := s.update(false, func(st *fileState) error {
		for _, p := range st.Pushed {
			if project == "" || p.Project == project {
				out = append(out, p)
			}
		}
		return nil
	})
	sortPushed(out)
	return out, err
}

// Forget implements Store.
func (s *FileStore) Forget(_ context.Context, key string) error {
	return s.update(true, func(st *fileState) error { delete(st.Pushed, key); return nil })
}

// RecordDeletion implements Store.
func (s *FileStore) RecordDeletion(_ context.Context, d Deletion) error {
	return s.update(true, func(st *fileState) error { st.Deletions = append(st.Deletions, d); return nil })
}

// Deletions implements Store.
func (s *FileStore) Deletions(_ context.Context) ([]Deletion, error) {
	var out []Deletion
	err := s.update(false, func(st *fileState) error { out = st.Deletions; return nil })
	return out, err
}

// MarkRestored implements Store.
func (s *FileStore) MarkRestored(_ context.Context, id string, at time.Time) error {
	return s.update(true, func(st *fileState) error {
		for i := range st.Deletions {
			if st.Deletions[i].ID == id {
				st.Deletions[i].RestoredAt = &at
				return nil
			}
		}
		return fmt.Errorf("branches: no deletion %q", id)
	})
}

// sortPushed orders records by project, remote and branch.
func sortPushed(ps []Pushed) {
	slices.SortFunc(ps, func(a, b Pushed) int { return strings.Compare(a.Key(), b.Key()) })
}
