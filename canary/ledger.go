package canary

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/prometheus/client_golang/prometheus"
)

// line is an Entry as the file ledger writes it, one JSON object per
// line: the durations in milliseconds (duration_ms, wait_ms), fields in
// this order; drill (Entry.Drill) only on the records of a drill. stage is written for calls and comparisons (0 is a stage)
// and for other entries that carry one; a line without it (written before
// stages were recorded, or a rollback's) reads as Stage -1, unknown.
type line struct {
	At         time.Time         `json:"at"`
	Kind       Kind              `json:"kind"`
	Op         backends.Op       `json:"op"`
	Routed     backends.Name     `json:"routed,omitempty"`
	Backend    backends.Name     `json:"backend,omitempty"`
	FellBack   bool              `json:"fell_back,omitempty"`
	Category   backends.Category `json:"category,omitempty"`
	DurationMS float64           `json:"duration_ms,omitempty"`
	Stage      *int              `json:"stage,omitempty"`
	CostUSD    float64           `json:"cost_usd,omitempty"`
	InFlight   int               `json:"in_flight,omitempty"`
	WaitMS     float64           `json:"wait_ms,omitempty"`
	Outcome    Outcome           `json:"outcome,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Drill      string            `json:"drill,omitempty"`
}

// MarshalJSON writes e as a line of the file ledger.
func (e Entry) MarshalJSON() ([]byte, error) {
	l := line{At: e.At, Kind: e.Kind, Op: e.Op, Routed: e.Routed, Backend: e.Backend, FellBack: e.FellBack,
		Category: e.Category, DurationMS: durationMS(e.Duration), CostUSD: e.CostUSD, InFlight: e.InFlight,
		WaitMS: durationMS(e.Wait), Outcome: e.Outcome, Detail: e.Detail, Drill: e.Drill}
	if stage, known := e.storedStage(); known {
		l.Stage = &stage
	}
	return json.Marshal(l)
}

// UnmarshalJSON reads a line of the file ledger.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*e = Entry{At: l.At, Kind: l.Kind, Op: l.Op, Routed: l.Routed, Backend: l.Backend, FellBack: l.FellBack,
		Category: l.Category, Duration: fromMS(l.DurationMS), Outcome: l.Outcome, Detail: l.Detail,
		Stage: unknownStage, CostUSD: l.CostUSD, InFlight: l.InFlight, Wait: fromMS(l.WaitMS), Drill: l.Drill}
	if l.Stage != nil {
		e.Stage = *l.Stage
	}
	return nil
}

// unknownStage is the Stage of an entry whose stage was not recorded.
const unknownStage = -1

// storedStage is the stage both stores keep for e, and whether it is
// known: a call's or a comparison's always (0 is a stage: everything on
// Approach 1); another entry's (a rollback, a sandbox) only when set,
// since their zero value says nothing.
func (e Entry) storedStage() (int, bool) {
	if e.Kind == KindCall || e.Kind == KindComparison || (e.Stage != 0 && e.Stage != unknownStage) {
		return e.Stage, true
	}
	return unknownStage, false
}

// durationMS is d in milliseconds, to the microsecond, as the ledger keeps it.
func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fromMS is the duration the ledger keeps as ms milliseconds.
func fromMS(ms float64) time.Duration { return time.Duration(math.Round(ms*1000)) * time.Microsecond }

// Store persists ledger entries.
type Store interface {
	Append(ctx context.Context, entries []Entry) error
}

// FileStore is the embedded store: JSON lines appended to a file.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore returns a store appending to path.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Append writes entries, one JSON object per line.
func (s *FileStore) Append(_ context.Context, entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadFile returns the entries of a file store at or after since.
func ReadFile(path string, since time.Time) ([]Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	dec := json.NewDecoder(f)
	for {
		var e Entry
		if err := dec.Decode(&e); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
}

// LedgerConfig configures a Ledger. Zero values take the defaults.
type LedgerConfig struct {
	Buffer     int           // entries held before new ones are dropped; default 8192
	FlushEvery time.Duration // default 1 s
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Ledger writes entries to its store in the background. Record never
// blocks: when the buffer is full the entry is dropped and counted, so
// writing the ledger can neither slow nor fail an agent's call.
type Ledger struct {
	store   Store
	cfg     LedgerConfig
	ch      chan Entry
	dropped prometheus.Counter
	failed  prometheus.Counter
	done    chan struct{}
	started atomic.Bool
}

// NewLedger returns a ledger over store; call Run to start writing.
func NewLedger(store Store, cfg LedgerConfig) *Ledger {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 8192
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Ledger{store: store, cfg: cfg, ch: make(chan Entry, cfg.Buffer), done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "gitgate_ledger_dropped_total", Help: "Ledger entries dropped because the buffer was full."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "gitgate_ledger_write_errors_total", Help: "Ledger batches the store refused."})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(l.dropped, l.failed)
	}
	return l
}

// Record queues an entry without blocking.
func (l *Ledger) Record(e Entry) {
	select {
	case l.ch <- e:
	default:
		l.dropped.Inc()
	}
}

// Run writes queued entries in batches until ctx ends, then writes what is
// left and returns.
func (l *Ledger) Run(ctx context.Context) {
	if !l.started.CompareAndSwap(false, true) {
		return
	}
	defer close(l.done)
	t := time.NewTicker(l.cfg.FlushEvery)
	defer t.Stop()
	var batch []Entry
	for {
		select {
		case e := <-l.ch:
			batch = append(batch, e)
			if len(batch) >= 512 {
				batch = l.flush(ctx, batch)
			}
		case <-t.C:
			batch = l.flush(ctx, batch)
		case <-ctx.Done():
			for {
				select {
				case e := <-l.ch:
					batch = append(batch, e)
				default:
					l.flush(context.WithoutCancel(ctx), batch)
					return
				}
			}
		}
	}
}

// Wait returns once everything recorded so far has been written: it waits
// for Run to return (if it started; a Run after Wait does nothing), then
// writes what was recorded after Run's last batch (a rollback that
// finished during shutdown, say) itself.
func (l *Ledger) Wait() {
	if l.started.CompareAndSwap(false, true) {
		close(l.done)
	} else {
		<-l.done
	}
	var batch []Entry
	for {
		select {
		case e := <-l.ch:
			batch = append(batch, e)
		default:
			l.flush(context.Background(), batch)
			return
		}
	}
}

func (l *Ledger) flush(ctx context.Context, batch []Entry) []Entry {
	if len(batch) == 0 {
		return batch
	}
	if err := l.store.Append(ctx, batch); err != nil {
		l.failed.Inc()
		l.cfg.Logger.Warn("ledger batch not written", "entries", len(batch), "err", err)
	}
	return batch[:0]
}

// LedgerPath is the file store's default path, beside the flag file at
// flagPath.
func LedgerPath(flagPath string) string { return flagPath + ".ledger.jsonl" }
