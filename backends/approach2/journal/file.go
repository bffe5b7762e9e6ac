package journal

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// DefaultRetention is how long Dir keeps settled entries.
const DefaultRetention = 7 * 24 * time.Hour

// DirOptions configures a Dir. The zero value uses the defaults.
type DirOptions struct {
	// Logger receives pruning notes; nil discards them.
	Logger *slog.Logger
	// InFlightTimeout is how long a started entry blocks a duplicate before
	// it counts as stale and must be reconciled (default 10 min), measured
	// from its last claim, as with Options.InFlightTimeout.
	InFlightTimeout time.Duration
	// PollInterval is how often StartWait re-reads a running entry
	// (default 50ms).
	PollInterval time.Duration
	// Retention is how long a settled entry is kept (and so how long a
	// retry with its key replays it) before it is pruned (default 7 days).
	// Started entries are never pruned.
	Retention time.Duration
	// PruneEvery is how often Start prunes expired entries, at most, in
	// this process (default: an hour, or Retention/4 when that is shorter).
	PruneEvery time.Duration
}

func (o DirOptions) withDefaults() DirOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.InFlightTimeout <= 0 {
		o.InFlightTimeout = DefaultInFlightTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = min(time.Hour, o.Retention/4)
	}
	return o
}

// Dir is the embedded operation journal: the same promises as the
// PostgreSQL Journal (see Store), kept in files under one directory, for a
// single machine without PostgreSQL. Several processes may open the same
// directory at once (a gateway and the stdio processes an MCP client
// starts); they coordinate through the file system only:
//
//   - entries/<h> holds the entry of the key whose sha256 is h, as JSON. It
//     is created with link(2) of a complete, fsynced temporary file, which
//     fails if the name exists: of two processes starting the same key,
//     exactly one proceeds.
//   - every change of an entry is a read-modify-write under flock(2) on the
//     entry file, written as a new temporary file (fsynced) renamed over the
//     entry, then the directory fsynced. A writer that locked a file which
//     was meanwhile replaced or pruned notices (the path no longer names
//     the locked inode) and starts again.
//   - seq holds the last entry id, incremented under flock, so ids are
//     unique and grow in the order entries are started; ids/<id> names the
//     entry's key hash for Get.
//   - started/<h> marks an entry that may still be started, so Unsettled
//     reads only those.
//
// Settled entries are pruned once Retention has passed (opportunistically
// by Start, or by Prune). It is safe for concurrent use. The directory must
// be on a local file system (flock and link semantics). A journaled write
// costs about a dozen fsyncs (Start, SetPrepared, Settle).
//
// Why not an embedded database: bbolt holds an exclusive lock on its file
// for as long as a process has it open, so the stdio processes of one
// client could not share it; SQLite (mattn/go-sqlite3 needs cgo,
// modernc.org/sqlite is a large dependency) would do, but the few file
// operations here keep every promise without one.
type Dir struct {
	dir  string
	opts DirOptions

	pruneMu   sync.Mutex
	lastPrune time.Time
	now       func() time.Time // the clock; tests replace it
}

var _ Store = (*Dir)(nil)

// The subdirectories of a Dir.
const (
	dirEntries = "entries"
	dirIDs     = "ids"
	dirStarted = "started"
	dirTmp     = "tmp"
	seqFile    = "seq"
)

// OpenDir opens (creating it, mode 0700, if missing) the embedded journal
// in dir.
func OpenDir(dir string, opts DirOptions) (*Dir, error) {
	if dir == "" {
		return nil, backends.Errorf(backends.InvalidArgument, "the journal directory is not set")
	}
	for _, sub := range []string{dirEntries, dirIDs, dirStarted, dirTmp} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fileError("create the journal directory", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, seqFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fileError("create the journal's id counter", err)
	}
	_ = f.Close()
	return &Dir{dir: dir, opts: opts.withDefaults(), now: time.Now}, nil
}

// Close releases nothing (every call closes its own files); it is there so
// that Dir can stand where *Journal did.
func (d *Dir) Close() {}

// Ping checks that the journal directory is still usable.
func (d *Dir) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return ctxError("ping", err)
	}
	if _, err := os.Stat(filepath.Join(d.dir, seqFile)); err != nil {
		return fileError("ping", err)
	}
	return nil
}

// diskEntry is the JSON form of an Entry.
type diskEntry struct {
	ID             int64           `json:"id"`
	Project        string          `json:"project"`
	Workspace      string          `json:"workspace"`
	IdempotencyKey string          `json:"idempotency_key"`
	Op             string          `json:"op"`
	Fingerprint    []byte          `json:"fingerprint"`
	State          State           `json:"state"`
	Fence          int64           `json:"fence"`
	Prepared       json.RawMessage `json:"prepared,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	ErrorCategory  string          `json:"error_category,omitempty"`
	ErrorMessage   string          `json:"error_message,omitempty"`
	Reconciled     bool            `json:"reconciled,omitempty"`
	Attempts       int             `json:"attempts"`
	StartedAt      time.Time       `json:"started_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	SettledAt      *time.Time      `json:"settled_at,omitempty"`
}

func (e *diskEntry) entry() Entry {
	out := Entry{ID: e.ID, Key: Key{e.Project, e.Workspace, e.IdempotencyKey}, Op: e.Op,
		Fingerprint: e.Fingerprint, State: e.State, Fence: e.Fence,
		Prepared: rawOrNil(e.Prepared), Result: rawOrNil(e.Result),
		ErrorCategory: e.ErrorCategory, ErrorMessage: e.ErrorMessage, Reconciled: e.Reconciled,
		StartedAt: e.StartedAt, UpdatedAt: e.UpdatedAt, Attempts: e.Attempts}
	if e.SettledAt != nil {
		out.SettledAt = *e.SettledAt
	}
	return out
}

func rawOrNil(r json.RawMessage) []byte {
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return slices.Clone(r)
}

// keyHash names the files of k: the sha256 of its three parts, each
// length-prefixed so that no two keys share an encoding.
func keyHash(k Key) string {
	h := sha256.New()
	for _, s := range []string{k.Project, k.Workspace, k.IdempotencyKey} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (d *Dir) entryPath(hash string) string { return filepath.Join(d.dir, dirEntries, hash) }
func (d *Dir) idPath(id int64) string {
	return filepath.Join(d.dir, dirIDs, strconv.FormatInt(id, 10))
}
func (d *Dir) markerPath(hash string) string { return filepath.Join(d.dir, dirStarted, hash) }

// Start records the operation b before it runs, with the outcomes of
// (*Journal).Start: Proceed for a new entry, Replay for a settled identical
// one, Reconcile for a stale started one, a Conflict wrapping ErrInFlight
// for one still running, an InvalidArgument wrapping ErrKeyReused for the
// key used with another request.
func (d *Dir) Start(ctx context.Context, b Begin) (Entry, Outcome, error) {
	if err := b.validate(); err != nil {
		return Entry{}, 0, err
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, 0, ctxError("record the operation", err)
	}
	d.maybePrune(ctx)
	hash := keyHash(b.Key)
	// A key pruned between a failed create and the read is tried again,
	// as the PostgreSQL journal does.
	for range 3 {
		if e, err := d.readEntry(hash); err == nil {
			return judge(e.entry(), d.stale(e), b)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Entry{}, 0, fileError("read the recorded operation", err)
		}
		e, created, err := d.create(hash, b)
		if err != nil {
			return Entry{}, 0, fileError("record the operation", err)
		}
		if created {
			return e.entry(), Proceed, nil
		}
	}
	return Entry{}, 0, internalError("record the operation",
		errors.New("the entry kept disappearing between create and read"))
}

// create records a new started entry for b unless the key has one; created
// is false when another process got there first.
func (d *Dir) create(hash string, b Begin) (*diskEntry, bool, error) {
	id, err := d.nextID()
	if err != nil {
		return nil, false, err
	}
	now := d.now().UTC()
	e := &diskEntry{ID: id, Project: b.Project, Workspace: b.Workspace, IdempotencyKey: b.IdempotencyKey,
		Op: b.Op, Fingerprint: b.Fingerprint, State: Started, Fence: b.Fence, Prepared: rawOrNil(b.Prepared),
		Attempts: 1, StartedAt: now, UpdatedAt: now}
	// The id and the marker exist before the entry does, so a crash in
	// between leaves only harmless leftovers that pruning removes.
	if err := d.writeNew(d.idPath(id), []byte(hash)); err != nil {
		return nil, false, err
	}
	switch err := d.writeNew(d.markerPath(hash), nil); {
	case errors.Is(err, fs.ErrExist):
		// Another Start's, or a leftover: make it fresh, so that Unsettled
		// does not drop it before the entry exists (see markerGrace). If
		// it is gone, its entry was settled, and the create below fails.
		_ = os.Chtimes(d.markerPath(hash), time.Now(), time.Now())
	case err != nil:
		return nil, false, err
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, false, err
	}
	err = d.writeNew(d.entryPath(hash), raw)
	if errors.Is(err, fs.ErrExist) {
		_ = os.Remove(d.idPath(id))
		return nil, false, nil
	}
	if err != nil {
		_ = os.Remove(d.idPath(id))
		return nil, false, err
	}
	return e, true, nil
}

func (d *Dir) stale(e *diskEntry) bool {
	return e.UpdatedAt.Before(d.now().Add(-d.opts.InFlightTimeout))
}

// StartWait is Start, except that while an identical operation is still
// running it polls until that one settles (then Replay) or goes stale (then
// Reconcile), or until ctx ends, when it returns the Conflict; as
// (*Journal).StartWait.
func (d *Dir) StartWait(ctx context.Context, b Begin) (Entry, Outcome, error) {
	return startWait(ctx, d.Start, b, d.opts.PollInterval)
}

// Settle records the end of the operation id run under fence, as
// (*Journal).Settle: only while the entry is started and holds fence,
// otherwise a Conflict wrapping ErrFenced.
func (d *Dir) Settle(ctx context.Context, id, fence int64, state State, result []byte, category, message string) error {
	if err := validSettle(state, []State{Succeeded, Failed}, result); err != nil {
		return err
	}
	return d.change(ctx, "settle the operation", id, fencedError(id, fence), func(e *diskEntry) bool {
		if e.State != Started || e.Fence != fence {
			return false
		}
		d.settle(e, state, result, category, message)
		return true
	})
}

func (d *Dir) settle(e *diskEntry, state State, result []byte, category, message string) {
	now := d.now().UTC()
	e.State, e.Result, e.ErrorCategory, e.ErrorMessage = state, rawOrNil(result), category, message
	e.SettledAt, e.UpdatedAt = &now, now
}

// Reconciled settles a started entry after crash reconciliation and marks
// it reconciled, as (*Journal).Reconciled: it ignores the fence; an entry
// already settled gives a Conflict wrapping ErrSettled.
func (d *Dir) Reconciled(ctx context.Context, id int64, state State, result []byte, category, message string) error {
	if err := validSettle(state, []State{Succeeded, Failed, Unknown}, result); err != nil {
		return err
	}
	settled := &backends.Error{Category: backends.Conflict, Message: "the journal entry is already settled", Err: ErrSettled}
	return d.change(ctx, "settle the reconciled operation", id, settled, func(e *diskEntry) bool {
		if e.State != Started {
			return false
		}
		d.settle(e, state, result, category, message)
		e.Reconciled = true
		return true
	})
}

// Takeover lets a new holder, under lock grant newFence, claim a started
// entry to retry it, as (*Journal).Takeover: newer fence, one more attempt,
// a fresh claim time; otherwise a Conflict wrapping ErrFenced.
func (d *Dir) Takeover(ctx context.Context, id, newFence int64) error {
	return d.change(ctx, "take the operation over", id, fencedError(id, newFence), func(e *diskEntry) bool {
		if e.State != Started || e.Fence >= newFence {
			return false
		}
		e.Fence, e.Attempts, e.UpdatedAt = newFence, e.Attempts+1, d.now().UTC()
		return true
	})
}

// SetPrepared records what recovery needs (JSON) on a started entry, by
// its current holder only, as (*Journal).SetPrepared.
func (d *Dir) SetPrepared(ctx context.Context, id, fence int64, prepared []byte) error {
	if err := validJSON("prepared", prepared); err != nil {
		return err
	}
	return d.change(ctx, "record the operation's plan", id, fencedError(id, fence), func(e *diskEntry) bool {
		if e.State != Started || e.Fence != fence {
			return false
		}
		e.Prepared, e.UpdatedAt = rawOrNil(prepared), d.now().UTC()
		return true
	})
}

// change applies fn to entry id under its lock and saves it; when fn
// refuses (or the entry does not exist) it returns refused. A settled
// entry loses its started marker.
func (d *Dir) change(ctx context.Context, what string, id int64, refused error, fn func(*diskEntry) bool) error {
	if err := ctx.Err(); err != nil {
		return ctxError(what, err)
	}
	hash, err := d.hashOf(id)
	if errors.Is(err, fs.ErrNotExist) {
		return refused
	}
	if err != nil {
		return fileError(what, err)
	}
	var settled, applied bool
	err = d.update(hash, func(e *diskEntry) (bool, error) {
		if e.ID != id || !fn(e) {
			return false, nil
		}
		applied, settled = true, e.State.Settled()
		return true, nil
	})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return refused
	case err != nil:
		return fileError(what, err)
	case !applied:
		return refused
	}
	if settled {
		_ = os.Remove(d.markerPath(hash))
	}
	return nil
}

// Get returns the entry with the given id, or a NotFound error wrapping
// ErrNotFound.
func (d *Dir) Get(ctx context.Context, id int64) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, ctxError("read the operation", err)
	}
	notFound := &backends.Error{Category: backends.NotFound, Message: "no journal entry has this id", Err: ErrNotFound}
	hash, err := d.hashOf(id)
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, notFound
	}
	if err != nil {
		return Entry{}, fileError("read the operation", err)
	}
	e, err := d.readEntry(hash)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Entry{}, notFound
	case err != nil:
		return Entry{}, fileError("read the operation", err)
	case e.ID != id:
		return Entry{}, notFound
	}
	return e.entry(), nil
}

// Unsettled lists the entries still started whose last claim is at least
// olderThan ago (0 lists them all), oldest first.
func (d *Dir) Unsettled(ctx context.Context, olderThan time.Duration) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError("list unsettled operations", err)
	}
	markers, err := os.ReadDir(filepath.Join(d.dir, dirStarted))
	if err != nil {
		return nil, fileError("list unsettled operations", err)
	}
	cutoff := d.now().Add(-olderThan)
	var out []Entry
	for _, m := range markers {
		if !isHash(m.Name()) {
			continue
		}
		e, err := d.readEntry(m.Name())
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fileError("list unsettled operations", err)
		}
		if err != nil || e.State != Started {
			d.dropMarker(m)
			continue
		}
		if !e.UpdatedAt.After(cutoff) {
			out = append(out, e.entry())
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// markerGrace is how old a marker without a started entry must be before
// it is removed: a Start writes its marker just before its entry.
const markerGrace = time.Minute

func (d *Dir) dropMarker(m fs.DirEntry) {
	if info, err := m.Info(); err == nil && time.Since(info.ModTime()) > markerGrace { // file times are real time
		_ = os.Remove(d.markerPath(m.Name()))
	}
}

// Prune removes the entries settled longer than Retention ago, and the
// leftovers of processes that died while writing. It returns how many
// entries it removed.
func (d *Dir) Prune(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, ctxError("prune the journal", err)
	}
	cutoff := d.now().Add(-d.opts.Retention)
	files, err := os.ReadDir(filepath.Join(d.dir, dirEntries))
	if err != nil {
		return 0, fileError("prune the journal", err)
	}
	n := 0
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		if !isHash(f.Name()) {
			continue
		}
		e, err := d.readEntry(f.Name())
		if err != nil || !expired(e, cutoff) {
			continue
		}
		err = d.update(f.Name(), func(e *diskEntry) (bool, error) {
			if !expired(e, cutoff) {
				return false, nil
			}
			if err := os.Remove(d.entryPath(f.Name())); err != nil {
				return false, err
			}
			_ = os.Remove(d.idPath(e.ID))
			n++
			return false, nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fileError("prune the journal", err)
		}
	}
	d.pruneLeftovers()
	if n > 0 {
		_ = syncDir(filepath.Join(d.dir, dirEntries))
		d.opts.Logger.Info("journal pruned settled entries", "removed", n, "retention", d.opts.Retention)
	}
	return n, nil
}

func expired(e *diskEntry, cutoff time.Time) bool {
	return e.State.Settled() && e.SettledAt != nil && e.SettledAt.Before(cutoff)
}

// leftoverAge is how old a temporary file or an id without its entry must
// be before pruning removes it (a live Start creates them moments before
// its entry).
const leftoverAge = time.Hour

// pruneLeftovers removes old temporary files and ids whose entry is gone.
func (d *Dir) pruneLeftovers() {
	old := func(e fs.DirEntry) bool {
		info, err := e.Info()
		return err == nil && time.Since(info.ModTime()) > leftoverAge // file times are real time
	}
	if tmps, err := os.ReadDir(filepath.Join(d.dir, dirTmp)); err == nil {
		for _, f := range tmps {
			if old(f) {
				_ = os.Remove(filepath.Join(d.dir, dirTmp, f.Name()))
			}
		}
	}
	ids, err := os.ReadDir(filepath.Join(d.dir, dirIDs))
	if err != nil {
		return
	}
	for _, f := range ids {
		id, err := strconv.ParseInt(f.Name(), 10, 64)
		if err != nil || !old(f) {
			continue
		}
		hash, err := d.hashOf(id)
		if err != nil {
			continue
		}
		if e, err := d.readEntry(hash); errors.Is(err, fs.ErrNotExist) || (err == nil && e.ID != id) {
			_ = os.Remove(d.idPath(id))
		}
	}
}

// maybePrune prunes when PruneEvery has passed since this process last did.
func (d *Dir) maybePrune(ctx context.Context) {
	d.pruneMu.Lock()
	due := d.now().Sub(d.lastPrune) >= d.opts.PruneEvery
	if due {
		d.lastPrune = d.now()
	}
	d.pruneMu.Unlock()
	if due {
		if _, err := d.Prune(ctx); err != nil {
			d.opts.Logger.Warn("journal pruning failed", "err", err)
		}
	}
}

// readEntry reads the entry file of hash (fs.ErrNotExist if none).
func (d *Dir) readEntry(hash string) (*diskEntry, error) {
	raw, err := os.ReadFile(d.entryPath(hash))
	if err != nil {
		return nil, err
	}
	return decodeEntry(raw)
}

func decodeEntry(raw []byte) (*diskEntry, error) {
	var e diskEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("the entry file is corrupt: %w", err)
	}
	return &e, nil
}

// hashOf returns the key hash recorded for id.
func (d *Dir) hashOf(id int64) (string, error) {
	raw, err := os.ReadFile(d.idPath(id))
	if err != nil {
		return "", err
	}
	if h := string(raw); isHash(h) {
		return h, nil
	}
	return "", fs.ErrNotExist // a leftover of a crash while it was written
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// update runs fn on the entry of hash under an exclusive flock of its file;
// when fn returns true the changed entry replaces the file (atomically and
// durably) before the lock is released. fs.ErrNotExist means there is no
// entry.
func (d *Dir) update(hash string, fn func(*diskEntry) (bool, error)) error {
	path := d.entryPath(hash)
	for {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		same, err := lockFile(f, path)
		if err != nil || !same {
			_ = f.Close()
			if err != nil {
				return err
			}
			continue // replaced or pruned while we waited: look again
		}
		err = func() error {
			raw, err := io.ReadAll(f)
			if err != nil {
				return err
			}
			e, err := decodeEntry(raw)
			if err != nil {
				return err
			}
			save, err := fn(e)
			if err != nil || !save {
				return err
			}
			out, err := json.Marshal(e)
			if err != nil {
				return err
			}
			return d.replace(path, out)
		}()
		_ = f.Close() // releases the flock
		return err
	}
}

// lockFile takes an exclusive flock on f, opened from path, and reports
// whether path still names f's file once the lock is held.
func lockFile(f *os.File, path string) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return false, err
		}
	}
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

// nextID increments the id counter under its flock.
func (d *Dir) nextID() (int64, error) {
	f, err := os.OpenFile(filepath.Join(d.dir, seqFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := lockFile(f, f.Name()); err != nil {
		return 0, err
	}
	buf := make([]byte, 21)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	var last int64
	if s := strings.TrimSpace(string(buf[:n])); s != "" {
		if last, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, fmt.Errorf("the id counter %q is corrupt: %w", s, err)
		}
	}
	if _, err := fmt.Fprintf(io.NewOffsetWriter(f, 0), "%020d\n", last+1); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return last + 1, nil
}

// writeNew creates path with data unless it exists (fs.ErrExist): a
// complete, fsynced temporary file is linked into place, so readers never
// see a partial file, and the directory is fsynced.
func (d *Dir) writeNew(path string, data []byte) error {
	tmp, err := d.writeTemp(data)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp) }() // linked or not, the temporary name goes
	if err := os.Link(tmp, path); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) && errors.Is(le.Err, syscall.EEXIST) {
			return fs.ErrExist
		}
		return err
	}
	return syncDir(filepath.Dir(path))
}

// replace atomically and durably replaces path with data.
func (d *Dir) replace(path string, data []byte) error {
	tmp, err := d.writeTemp(data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new fsynced file in the tmp directory.
func (d *Dir) writeTemp(data []byte) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := filepath.Join(d.dir, dirTmp, hex.EncodeToString(b[:]))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileError categorises a failure of the journal directory: a full disk is
// ResourceExhausted, anything else Internal; the cause stays wrapped.
func fileError(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return backends.Errorf(backends.ResourceExhausted, "the journal's disk is full: %s: %w", what, err)
	}
	return backends.Errorf(backends.Internal, "the journal failed to %s: %w", what, err)
}

// ctxError is what a call made with an ended ctx returns, with the
// categories of the PostgreSQL journal.
func ctxError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return backends.Errorf(backends.Timeout, "the journal call ran out of time: %s: %w", what, err)
	}
	return backends.Errorf(backends.Unavailable, "the journal call was cancelled: %s: %w", what, err)
}
