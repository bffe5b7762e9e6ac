package budget

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gitgate/gitgate/internal/atomicfile"
)

// FileStore keeps spend in a JSON file, for a single machine without
// Redis or PostgreSQL: the processes of that machine (a gateway, stdio
// processes) share it through an advisory lock on a file beside it.
type FileStore struct {
	path string
}

// fileState is the file's content.
type fileState struct {
	Months map[Month]fileMonth `json:"months"`
	Marks  map[string]fileMark `json:"marks"`
}

type fileMonth struct {
	Since   time.Time          `json:"since"`
	ByScope map[string]float64 `json:"by_scope"`
}

type fileMark struct {
	Until   time.Time `json:"until"`
	Ended   bool      `json:"ended,omitempty"`
	Updated time.Time `json:"updated"`
}

// OpenFileStore opens (creating its directory) the store in the file at
// path.
func OpenFileStore(path string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("budget store: %w", err)
	}
	return &FileStore{path: path}, nil
}

// update runs fn on the file's state under the lock and writes the result
// (atomically, by rename) when fn reports a change, dropping marks and
// months past their retention.
func (s *FileStore) update(fn func(st *fileState) bool) error {
	err := atomicfile.Update(s.path, 0o600, func(st *fileState) {
		if st.Months == nil {
			st.Months = map[Month]fileMonth{}
		}
		if st.Marks == nil {
			st.Marks = map[string]fileMark{}
		}
	}, func(st *fileState) (bool, error) {
		if !fn(st) {
			return false, nil
		}
		now := time.Now()
		for id, m := range st.Marks {
			if now.Sub(m.Updated) > markTTL {
				delete(st.Marks, id)
			}
		}
		var latest Month
		for m := range st.Months {
			latest = max(latest, m)
		}
		for m := range st.Months {
			if latest.Start().Sub(m.End()) > spendTTL {
				delete(st.Months, m)
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("budget store: %w", err)
	}
	return nil
}

// Advance implements Store.
func (s *FileStore) Advance(_ context.Context, sandbox string, until time.Time, end bool) (Mark, error) {
	var prev Mark
	err := s.update(func(st *fileState) bool {
		m, ok := st.Marks[sandbox]
		if ok {
			prev = Mark{Until: m.Until, Ended: m.Ended}
		}
		if m.Ended {
			return false
		}
		if until.After(m.Until) {
			m.Until = until
		}
		m.Ended, m.Updated = end, time.Now()
		st.Marks[sandbox] = m
		return true
	})
	return prev, err
}

// Add implements Store.
func (s *FileStore) Add(_ context.Context, month Month, at time.Time, amounts map[string]float64) error {
	return s.update(func(st *fileState) bool {
		m := st.Months[month]
		if m.ByScope == nil {
			m.ByScope = map[string]float64{}
		}
		for scope, usd := range amounts {
			m.ByScope[scope] += usd
		}
		if m.Since.IsZero() || at.Before(m.Since) {
			m.Since = at.UTC()
		}
		st.Months[month] = m
		return true
	})
}

// Spent implements Store.
func (s *FileStore) Spent(_ context.Context, month Month) (Spend, error) {
	out := Spend{ByScope: map[string]float64{}}
	err := s.update(func(st *fileState) bool {
		m := st.Months[month]
		for k, v := range m.ByScope {
			out.ByScope[k] = v
		}
		out.Since = m.Since
		return false
	})
	return out, err
}

// Close implements Store; the file store holds nothing open.
func (s *FileStore) Close() error { return nil }
