package flags

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// logHelperEnv makes TestFlagdLogsAreSlog run as the helper process
// whose standard error it checks.
const logHelperEnv = "GITGATE_TEST_FLAGD_LOG_HELPER"

// TestFlagdLogsAreSlog runs an evaluator on a flag file that changes, in a
// process of its own, and checks that every line on that process's
// standard error is a slog JSON record (time, level, msg): flagd's own log
// lines included, relayed with component=flagd, none in zap's format.
func TestFlagdLogsAreSlog(t *testing.T) {
	if os.Getenv(logHelperEnv) == "1" {
		flagdLogHelper(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFlagdLogsAreSlog$", "-test.count=1")
	cmd.Env = append(os.Environ(), logHelperEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	flagdLines := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %s", line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k].(string); !ok {
				t.Errorf("no %s (not slog's format): %s", k, line)
			}
		}
		if _, zap := rec["ts"]; zap {
			t.Errorf("a zap line: %s", line)
		}
		if rec["component"] == "flagd" {
			flagdLines++
		}
	}
	if flagdLines == 0 {
		t.Errorf("no line of flagd's relayed:\n%s", stderr.String())
	}
}

// flagdLogHelper is the helper process: an evaluator logging slog JSON to
// standard error follows a flag file through a change, and waits until
// flagd's own lines have been relayed.
func flagdLogHelper(t *testing.T) {
	seen := &testkit.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(os.Stderr, seen), &slog.HandlerOptions{Level: slog.LevelDebug}))
	path := filepath.Join(t.TempDir(), "flags.json")
	f := NewFile(ops)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	e, err := Open(t.Context(), Config{Path: path, Ops: ops, Domain: t.Name(), OverridePath: path + ".override.json",
		Logger: log, CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_ = f.SetRoute("status", 100)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the change applies", func() bool { return e.Decide(t.Context(), "status", "p/ws").Backend == Approach2 })
	testkit.Eventually(t, "flagd's lines are relayed", func() bool { return strings.Contains(seen.String(), `"component":"flagd"`) })
}
