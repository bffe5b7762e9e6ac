package drill

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/internal/atomicfile"
)

// historyID is what History accepts as a Result's ID, and so as the name
// of its files: the start time as NewID writes it (fixed width, so that
// IDs sort as their times do), optionally followed by
// "-" and letters or digits (two runs started in the same second). It
// cannot name another directory, and the other files a drill keeps in
// the directory (its snapshot, its lock, temporary files) do not match it.
var historyID = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9A-Za-z]+)?$`)

// The file extensions of a run in the history directory.
const (
	historyJSONExt     = ".json"
	historyMarkdownExt = ".md"
)

// History is the directory where each drill run leaves its Result:
// <id>.json (the Result, for `gitgate drill history`, the metrics and
// tools) and <id>.md (Markdown, for people). Runs are never rewritten:
// the directory only grows.
type History struct {
	Dir string
}

// Save writes r as <id>.json and <id>.md in the directory, creating it
// (0o755) if needed. Each file is written atomically (a temporary file in
// the directory, synced, renamed over the name, and the directory synced),
// the Markdown first, so that a run List sees always has its Markdown too.
// It returns both paths.
func (h History) Save(r Result) (jsonPath, mdPath string, err error) {
	if !historyID.MatchString(r.ID) {
		return "", "", fmt.Errorf("drill history: save: result ID %q is not a start time like 20261206T031500Z", r.ID)
	}
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return "", "", fmt.Errorf("drill history: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("drill history: encode %s: %w", r.ID, err)
	}
	jsonPath = filepath.Join(h.Dir, r.ID+historyJSONExt)
	mdPath = filepath.Join(h.Dir, r.ID+historyMarkdownExt)
	if err := historyWrite(mdPath, []byte(Markdown(r))); err != nil {
		return "", "", fmt.Errorf("drill history: %w", err)
	}
	if err := historyWrite(jsonPath, append(js, '\n')); err != nil {
		return "", "", fmt.Errorf("drill history: %w", err)
	}
	return jsonPath, mdPath, nil
}

// historyWrite replaces path with data (a new file gets mode 0o644): a
// reader sees the old file or the new one, never part of it, and a crash
// after it returns does not lose it (atomicfile.Write; its temporary files
// start with a dot, which keeps them out of List).
func historyWrite(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o644)
}

// List reads every run in the directory, newest first. A directory that
// does not exist yet holds no run (nil, nil). A file that cannot be read
// or decoded, or whose ID is not its name, is skipped: List returns the
// runs it could read beside the joined errors of those it could not, so
// that one damaged file hides no other run.
func (h History) List() ([]Result, error) {
	entries, err := os.ReadDir(h.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("drill history: %w", err)
	}
	var (
		rs   []Result
		errs []error
	)
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), historyJSONExt)
		if !ok || !historyID.MatchString(id) {
			continue
		}
		r, err := historyRead(filepath.Join(h.Dir, e.Name()))
		if err == nil && r.ID != id {
			err = fmt.Errorf("drill history: %s holds run %q", e.Name(), r.ID)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rs = append(rs, r)
	}
	SortNewestFirst(rs)
	return rs, errors.Join(errs...)
}

func historyRead(path string) (Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("drill history: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, fmt.Errorf("drill history: %s: %w", path, err)
	}
	return r, nil
}

// SortNewestFirst orders runs by their IDs (start times), newest first.
func SortNewestFirst(rs []Result) {
	slices.SortStableFunc(rs, func(a, b Result) int { return strings.Compare(b.ID, a.ID) })
}

// Last is the newest run in the directory that was not a dry run (a dry
// run changes nothing and proves nothing); ok is false when there is none.
// err is List's: runs it could not read.
func (h History) Last() (r Result, ok bool, err error) {
	rs, err := h.List()
	r, ok = LastRun(rs)
	return r, ok, err
}

// LastPassed is the newest passing run in the directory; ok is false when
// no drill ever passed. err is List's: runs it could not read.
func (h History) LastPassed() (r Result, ok bool, err error) {
	rs, err := h.List()
	r, ok = historyLastWhere(rs, func(r Result) bool { return r.Verdict.Passed() })
	return r, ok, err
}

// LastRun is the newest of rs (newest first, as List returns them) that
// was not a dry run.
func LastRun(rs []Result) (Result, bool) {
	return historyLastWhere(rs, func(r Result) bool { return r.Verdict != DryRun })
}

func historyLastWhere(rs []Result, keep func(Result) bool) (Result, bool) {
	for _, r := range rs {
		if keep(r) {
			return r, true
		}
	}
	return Result{}, false
}
