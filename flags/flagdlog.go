package flags

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
)

// flagd's provider v0.3.1 takes a logr.Logger (WithLogger), but its
// in-process service ignores it: it builds a zap logger of its own that
// writes zap's JSON lines ({"level":…,"ts":…}) to the os.Stderr of the
// moment it is built, beside gitgate's slog lines. newFlagdProvider builds
// the provider with os.Stderr briefly replaced by a pipe, so that the zap
// logger writes there, and relays every line it writes to the gitgate
// logger: one format on the process's standard error, and the logger's
// redaction applies.

// stderrMu serialises the replacement of os.Stderr.
var stderrMu sync.Mutex

// jsonlogicMu guards jsonlogic's package-level operator map. flagd's
// in-process evaluator registers its operators (fractional, sem_ver, ...)
// there, without a lock its evaluations share, every time a provider is
// built, and every evaluation of a targeting rule reads it: building a
// provider (at start, and when a failed one is restarted) while another
// provider of the process evaluates is a data race, which the Go runtime
// may end with a fatal "concurrent map read and map write". Building holds
// it for writing (newFlagdProvider), evaluating for reading (Decide).
var jsonlogicMu sync.RWMutex

// newFlagdProvider is flagd.NewProvider with the provider's logs, zap's
// included, sent to log.
func newFlagdProvider(log *slog.Logger, opts ...flagd.ProviderOption) (*flagd.Provider, error) {
	opts = append(opts, flagd.WithLogger(logr.FromSlogHandler(log.Handler())))
	r, w, err := os.Pipe()
	jsonlogicMu.Lock()
	defer jsonlogicMu.Unlock()
	if err != nil {
		log.Warn("flagd's own log lines go to standard error unconverted", "err", err)
		return flagd.NewProvider(opts...)
	}
	stderrMu.Lock()
	saved := os.Stderr
	os.Stderr = w
	p, err := flagd.NewProvider(opts...)
	os.Stderr = saved
	stderrMu.Unlock()
	// The zap logger holds w (and nothing else of ours does): when the
	// provider is gone, w is collected and closed, and relay ends.
	go relayZap(r, log)
	return p, err
}

// relayZap logs every zap JSON line read from r through log, until r ends.
func relayZap(r *os.File, log *slog.Logger) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		logZapLine(log, sc.Bytes())
	}
}

// logZapLine logs one zap JSON line: its level and message as the
// record's, its fields (but zap's time and caller) as attributes, with
// component=flagd. A line that is not JSON is logged as the message.
func logZapLine(log *slog.Logger, line []byte) {
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		log.Info(strings.TrimSpace(string(line)), "component", "flagd")
		return
	}
	level := slog.LevelInfo
	switch lv, _ := rec["level"].(string); lv {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error", "dpanic", "panic", "fatal":
		level = slog.LevelError
	}
	msg, _ := rec["msg"].(string)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		case "level", "ts", "msg", "caller":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	attrs := []slog.Attr{slog.String("component", "flagd")}
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, rec[k]))
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
}
