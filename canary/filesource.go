package canary

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
)

// RollupGrace is how long after an hour ends its records are still
// expected to arrive (ledger batches, clocks a little apart): only hours
// that ended longer ago than this are rolled up and kept as summaries.
const RollupGrace = 10 * time.Minute

// openHours is how many hours of cells a streaming read keeps open: the
// newest hour seen and the two before it. Older cells are handed on and
// dropped, so a read holds a few hours of cells, not weeks of them.
const openHours = 3

// maxLateCells bounds the cells a read keeps open for records older than
// its open hours (entries that arrived late): past it they are handed on
// at once instead of waiting for the next hour.
const maxLateCells = 256

// rollupFormat is the version of the roll-up file's format; a file of
// another version is ignored and rebuilt.
const rollupFormat = 1

// FileSource is a Source over the file store's JSON-lines ledger at Path.
// It streams the ledger, holding only the cells of the last few hours,
// and keeps the summaries of complete hours beside it in Path+".rollup"
// (see RollupPath), so a later read streams only what was written since.
//
// The roll-up file is JSON lines: one line per cell of a complete hour
// ({"hour","op","routed","stage","cell"}), then a mark line
// ({"mark":{"format","offset","complete"}}): the ledger's first offset
// bytes are summarised by those cells, every one of their records being
// of an hour before complete. Records after offset are streamed on every
// read, whatever their hour (a record that arrives late for a summarised
// hour is a second cell of its key), until a later read rolls them up.
//
// A ledger shorter than the mark's offset (rotated or replaced) makes the
// roll-up be ignored and rebuilt. Writing the roll-up (a temporary file
// renamed over the old one) never fails a read: a read-only directory,
// say, is logged and the read goes on from the ledger alone.
//
// A FileSource may be used by several goroutines; each read reports what
// it did in LastRead.
type FileSource struct {
	Path string
	// Logger receives the roll-up's failures; slog.Default when nil.
	Logger *slog.Logger
	// Now is the clock that says which hours are complete; time.Now when nil.
	Now func() time.Time

	mu   sync.Mutex
	last FileReadStats
}

// FileReadStats says what a FileSource read did, for tests and logs.
type FileReadStats struct {
	// RollupCells is how many cells came from the roll-up file.
	RollupCells int
	// LedgerFrom is the ledger offset the read streamed from (0 without a
	// usable roll-up); LedgerBytes how many bytes it streamed.
	LedgerFrom, LedgerBytes int64
	// MaxOpenCells is the most cells the read held open at once.
	MaxOpenCells int
	// Rebuilt is set when a roll-up file existed but did not fit the
	// ledger (rotated, replaced, unreadable) and was ignored.
	Rebuilt bool
	// Wrote is set when the read wrote a new roll-up file; Mark is the
	// offset its mark records.
	Wrote bool
	Mark  int64
}

// RollupPath is where a FileSource keeps the roll-up of the ledger at path.
func RollupPath(path string) string { return path + ".rollup" }

// LastRead is what the most recent read that finished did.
func (s *FileSource) LastRead() FileReadStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// rollupMark is the roll-up file's last line.
type rollupMark struct {
	Format   int       `json:"format"`
	Offset   int64     `json:"offset"`
	Complete time.Time `json:"complete"`
}

// rollupLine is a line of the roll-up file: a cell or the mark.
type rollupLine struct {
	Hour   time.Time     `json:"hour,omitzero"`
	Op     backends.Op   `json:"op,omitempty"`
	Routed backends.Name `json:"routed,omitempty"`
	Stage  int           `json:"stage,omitempty"`
	Cell   *Cell         `json:"cell,omitempty"`
	Mark   *rollupMark   `json:"mark,omitempty"`
}

// hourSpan is the hours a read over [since, until) covers: every hour
// that overlaps it. Summaries are hourly, so a source answers in whole
// hours: [from, to) with both on the hour.
func hourSpan(since, until time.Time) (from, to time.Time) {
	from, to = since.UTC().Truncate(time.Hour), until.UTC().Truncate(time.Hour)
	if to.Before(until) {
		to = to.Add(time.Hour)
	}
	return from, to
}

func inSpan(h, from, to time.Time) bool { return !h.Before(from) && h.Before(to) }

// completeBefore is the start of the first hour not yet complete at now:
// hours before it ended more than RollupGrace ago.
func completeBefore(now time.Time) time.Time { return now.UTC().Add(-RollupGrace).Truncate(time.Hour) }

// Cells implements Source: the cells of every hour overlapping [since,
// until), from the roll-up file and the ledger after its mark. It rolls
// up the hours completed since the last read on the way.
func (s *FileSource) Cells(ctx context.Context, since, until time.Time, fn func(Key, *Cell) error) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	from, to := hourSpan(since, until)
	complete := completeBefore(now())
	var st FileReadStats

	ledger, err := os.Open(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		s.setLast(st)
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer ledger.Close()
	info, err := ledger.Stat()
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}

	// The roll-up is read through one descriptor: a concurrent read may
	// rename a newer roll-up into place meanwhile, and this mark is only
	// true of the cells beside it.
	rollPath := RollupPath(s.Path)
	roll, rollErr := os.Open(rollPath)
	if rollErr == nil {
		defer roll.Close()
	}
	mark, ok := readRollupMark(roll, ledger, info.Size())
	if !ok {
		if _, err := os.Lstat(rollPath); err == nil {
			st.Rebuilt = true
			logger.Info("ledger roll-up does not fit the ledger (rotated or replaced?): rebuilding it", "rollup", rollPath)
		}
		mark = rollupMark{Format: rollupFormat}
	}
	st.LedgerFrom = mark.Offset

	// A new roll-up is written when hours completed since the mark; its
	// cells go to a temporary file as they are handed on.
	var w *rollupWriter
	if complete.After(mark.Complete) {
		w = newRollupWriter(rollPath, logger)
	}
	defer w.abandon()

	r := &cellStream{path: s.Path, from: from, to: to, fn: fn, complete: complete, rolling: w != nil,
		keep: func(k Key, c *Cell) error { w.writeCell(k, c); return nil }}
	if _, err := ledger.Seek(mark.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	end, err := r.streamLedger(ctx, ledger, mark.Offset)
	st.LedgerBytes = end - mark.Offset
	if err != nil {
		return err
	}
	if err := r.flush(func(time.Time) bool { return true }); err != nil {
		return err
	}
	st.MaxOpenCells = r.maxOpen
	newOffset := r.rolledTo
	if w != nil && newOffset <= mark.Offset {
		w.abandon() // nothing new to summarise: keep the file as it is
		w = nil
	}

	// The summarised hours: copied into the new roll-up if one is written.
	n, err := serveRollup(ctx, roll, mark, ok, from, to, fn, w)
	st.RollupCells = n
	if err != nil {
		return err
	}
	if w != nil {
		next := rollupMark{Format: rollupFormat, Offset: newOffset, Complete: complete}
		if w.commit(next) {
			st.Wrote, st.Mark = true, next.Offset
		}
	}
	s.setLast(st)
	return nil
}

func (s *FileSource) setLast(st FileReadStats) {
	s.mu.Lock()
	s.last = st
	s.mu.Unlock()
}

// readRollupMark reads the mark at the end of the roll-up file and checks
// that it fits the ledger: of this format, not past its end, and ending
// at a line's end.
func readRollupMark(f *os.File, ledger *os.File, size int64) (rollupMark, bool) {
	if f == nil {
		return rollupMark{}, false
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() == 0 {
		return rollupMark{}, false
	}
	tail := make([]byte, min(info.Size(), 4096))
	if _, err := f.ReadAt(tail, info.Size()-int64(len(tail))); err != nil {
		return rollupMark{}, false
	}
	tail = bytes.TrimRight(tail, "\n")
	if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	var l rollupLine
	if json.Unmarshal(tail, &l) != nil || l.Mark == nil || l.Mark.Format != rollupFormat || l.Mark.Offset < 0 || l.Mark.Offset > size {
		return rollupMark{}, false
	}
	if l.Mark.Offset > 0 {
		var b [1]byte
		if _, err := ledger.ReadAt(b[:], l.Mark.Offset-1); err != nil || b[0] != '\n' {
			return rollupMark{}, false
		}
	}
	return *l.Mark, true
}

// serveRollup hands fn the roll-up's cells of hours in [from, to) and,
// when w is set, copies every cell into it. It returns how many it handed.
func serveRollup(ctx context.Context, f *os.File, mark rollupMark, ok bool, from, to time.Time, fn func(Key, *Cell) error, w *rollupWriter) (int, error) {
	if !ok || (w == nil && !from.Before(mark.Complete)) {
		return 0, nil // no roll-up, or none of its hours asked for
	}
	path := f.Name()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 1<<16)
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("ledger roll-up: %w", err)
		}
		var l rollupLine
		if jerr := json.Unmarshal(b, &l); jerr != nil {
			return n, fmt.Errorf("ledger roll-up %s: %w", path, jerr)
		}
		if l.Cell != nil {
			w.copyLine(b)
			if inSpan(l.Hour, from, to) {
				n++
				if err := fn(Key{Hour: l.Hour, Op: l.Op, Routed: l.Routed, Stage: l.Stage}, l.Cell); err != nil {
					return n, err
				}
			}
		}
		if errors.Is(err, io.EOF) { // a last line without its newline
			return n, nil
		}
	}
}

// openKey is a cell a read holds open: its key and whether its records
// go into the roll-up being written.
type openKey struct {
	Key
	roll bool
}

// cellStream summarises ledger records into cells, holding open only
// the cells of the newest hours, and hands them on: to fn when their hour
// is in [from, to), to keep (the roll-up) when they are to be summarised.
type cellStream struct {
	from, to time.Time
	fn       func(Key, *Cell) error
	keep     func(Key, *Cell) error

	// The file's: its path (for errors) and the first hour not complete.
	path     string
	complete time.Time

	// rolling: the records read so far go into the roll-up; it stops at
	// the first record of an hour not complete (stoppedAt, its offset;
	// -1 while rolling), since the mark's offset must have every record
	// before it summarised.
	rolling   bool
	stoppedAt int64
	rolledTo  int64 // the offset up to which records were summarised

	open    map[openKey]*Cell
	newest  time.Time
	late    int // cells opened for hours before the open ones
	maxOpen int
}

// add counts e; roll says it goes into the roll-up.
func (r *cellStream) add(e Entry, roll bool) error {
	k := KeyOf(e)
	if !roll && !inSpan(k.Hour, r.from, r.to) {
		return nil
	}
	if r.open == nil {
		r.open = map[openKey]*Cell{}
	}
	ok := openKey{k, roll}
	horizon := r.newest.Add(-(openHours - 1) * time.Hour)
	c := r.open[ok]
	if c == nil {
		c = &Cell{}
		r.open[ok] = c
		r.maxOpen = max(r.maxOpen, len(r.open))
		if k.Hour.Before(horizon) {
			r.late++
		}
	}
	c.Add(e)
	if k.Hour.After(r.newest) || r.late > maxLateCells {
		r.newest = maxTime(r.newest, k.Hour)
		horizon = r.newest.Add(-(openHours - 1) * time.Hour)
		r.late = 0
		return r.flush(func(h time.Time) bool { return h.Before(horizon) })
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// flush hands on and drops the open cells whose hour old says is done.
func (r *cellStream) flush(old func(time.Time) bool) error {
	for k, c := range r.open {
		if !old(k.Hour) {
			continue
		}
		delete(r.open, k)
		if k.roll && r.keep != nil {
			if err := r.keep(k.Key, c); err != nil { // before fn, which may change c
				return err
			}
		}
		if inSpan(k.Hour, r.from, r.to) {
			if err := r.fn(k.Key, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// streamLedger reads the ledger from offset to its end and returns the
// offset it stopped at. A last line without its newline (perhaps being
// written) is counted when it reads as a record but never rolled up.
func (r *cellStream) streamLedger(ctx context.Context, f io.Reader, offset int64) (int64, error) {
	br := bufio.NewReaderSize(f, 1<<16)
	pos := offset
	r.stoppedAt, r.rolledTo = -1, offset
	var long []byte
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return pos, err
			}
		}
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			long = append(long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if errors.Is(err, io.EOF) {
			var e Entry
			if len(bytes.TrimSpace(b)) > 0 && e.UnmarshalJSON(b) == nil {
				return pos, r.add(e, false)
			}
			return pos, nil
		}
		if err != nil {
			return pos, fmt.Errorf("ledger: %w", err)
		}
		start := pos
		pos += int64(len(b))
		if len(bytes.TrimSpace(b)) == 0 {
			if r.rolling && r.stoppedAt < 0 {
				r.rolledTo = pos
			}
			continue
		}
		var e Entry
		if err := e.UnmarshalJSON(b); err != nil { // Entry's own decoding, without json's pass over the line first
			return pos, fmt.Errorf("ledger %s, the line at byte %d: %w", r.path, start, err)
		}
		roll := false
		if r.rolling && r.stoppedAt < 0 {
			if e.At.UTC().Truncate(time.Hour).Before(r.complete) {
				roll, r.rolledTo = true, pos
			} else {
				r.stoppedAt = start
			}
		}
		if err := r.add(e, roll); err != nil {
			return pos, err
		}
	}
}

// rollupWriter writes a new roll-up file: a temporary file beside the
// old one, renamed over it when complete. A failure is logged once and
// turns the writer off; the read goes on.
type rollupWriter struct {
	path   string
	logger *slog.Logger
	f      *os.File
	bw     *bufio.Writer
	failed bool
}

func newRollupWriter(path string, logger *slog.Logger) *rollupWriter {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		logger.Warn("ledger roll-up not written; reads stream the whole ledger", "rollup", path, "err", err)
		return nil
	}
	return &rollupWriter{path: path, logger: logger, f: f, bw: bufio.NewWriterSize(f, 1<<16)}
}

func (w *rollupWriter) fail(err error) {
	if w.failed {
		return
	}
	w.failed = true
	w.logger.Warn("ledger roll-up not written; reads stream the whole ledger", "rollup", w.path, "err", err)
}

func (w *rollupWriter) writeCell(k Key, c *Cell) {
	if w == nil || w.failed {
		return
	}
	b, err := json.Marshal(rollupLine{Hour: k.Hour, Op: k.Op, Routed: k.Routed, Stage: k.Stage, Cell: c})
	if err != nil {
		w.fail(err)
		return
	}
	w.copyLine(append(b, '\n'))
}

func (w *rollupWriter) copyLine(b []byte) {
	if w == nil || w.failed {
		return
	}
	if _, err := w.bw.Write(b); err != nil {
		w.fail(err)
		return
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		if err := w.bw.WriteByte('\n'); err != nil {
			w.fail(err)
		}
	}
}

// commit writes the mark, syncs and renames the file into place; it
// reports whether the new roll-up is in place.
func (w *rollupWriter) commit(m rollupMark) bool {
	if w == nil {
		return false
	}
	b, err := json.Marshal(rollupLine{Mark: &m})
	if err != nil {
		w.fail(err)
	}
	w.copyLine(append(b, '\n'))
	if !w.failed {
		if err := w.bw.Flush(); err != nil {
			w.fail(err)
		} else if err := w.f.Sync(); err != nil {
			w.fail(err)
		}
	}
	if err := w.f.Close(); err != nil {
		w.fail(err)
	}
	if !w.failed {
		if err := os.Rename(w.f.Name(), w.path); err != nil {
			w.fail(err)
		}
	}
	if w.failed {
		_ = os.Remove(w.f.Name())
		w.f = nil
		return false
	}
	w.f = nil
	return true
}

// abandon removes the temporary file of a roll-up not committed.
func (w *rollupWriter) abandon() {
	if w == nil || w.f == nil {
		return
	}
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
	w.f = nil
}
