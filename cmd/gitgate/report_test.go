package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"go.yaml.in/yaml/v3"
)

// reportLedger writes two weeks of calls of status and push at the 10 %
// stage, Approach 2 failing a fifth of its pushes, into a ledger file and
// returns its path and the period's end.
func reportLedger(t *testing.T, dir string) (string, time.Time) {
	t.Helper()
	until := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(11, 12))
	var es []canary.Entry
	for at := until.Add(-14 * 24 * time.Hour); at.Before(until); at = at.Add(time.Minute) {
		for _, op := range []backends.Op{backends.OpStatus, backends.OpPush} {
			e := canary.Entry{At: at, Kind: canary.KindCall, Op: op, Stage: 10, InFlight: 2,
				Routed: backends.Approach1, Backend: backends.Approach1, Duration: time.Duration(50+r.IntN(100)) * time.Millisecond}
			if r.IntN(10) == 0 {
				e.Routed, e.Backend = backends.Approach2, backends.Approach2
				if op == backends.OpPush && r.IntN(5) == 0 {
					e.Category = backends.Unavailable
				}
			}
			es = append(es, e)
		}
	}
	path := filepath.Join(dir, "ledger.jsonl")
	if err := canary.NewFileStore(path).Append(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	return path, until
}

// TestReportJSONAndExitCode: the JSON form holds the documented fields,
// push is judged rollback and the command exits 3 for it; status may
// advance.
func TestReportJSONAndExitCode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ledger, until := reportLedger(t, dir)
	res := runGitgate(t, "", "report", "--ledger", ledger, "--until", until.Format(time.RFC3339), "--since", "2w", "--format", "json")
	if res.Code != exitRollback {
		t.Fatalf("exit code %d, want %d; stderr %q", res.Code, exitRollback, res.Stderr)
	}
	if res.Stderr != "gitgate: verdict rollback for push\n" {
		t.Errorf("stderr %q", res.Stderr)
	}
	var got struct {
		Decision struct {
			Verdict string `json:"verdict"`
			Signals []struct {
				Name          string   `json:"name"`
				Value         *float64 `json:"value"`
				Threshold     *float64 `json:"threshold"`
				WeeksExceeded *int     `json:"weeks_exceeded"`
			} `json:"signals"`
		} `json:"decision"`
		Operations []struct {
			Op        string   `json:"op"`
			Verdict   string   `json:"verdict"`
			Reasons   []string `json:"reasons"`
			Approach1 struct {
				Calls     *int64   `json:"calls"`
				ErrorRate *float64 `json:"error_rate"`
				P50       *float64 `json:"p50_ms"`
				P95       *float64 `json:"p95_ms"`
				P99       *float64 `json:"p99_ms"`
				Cost      *float64 `json:"cost_per_op_usd"`
			} `json:"approach1"`
			Approach2 struct {
				Calls *int64 `json:"calls"`
			} `json:"approach2"`
		} `json:"operations"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, res.Stdout)
	}
	if got.Decision.Verdict != "stay" || len(got.Decision.Signals) == 0 {
		t.Errorf("decision %+v", got.Decision)
	}
	for _, s := range got.Decision.Signals {
		if s.Name == "" || s.Value == nil || s.Threshold == nil || s.WeeksExceeded == nil {
			t.Errorf("signal lacks a documented field: %+v", s)
		}
	}
	verdicts := map[string]string{}
	for _, o := range got.Operations {
		verdicts[o.Op] = o.Verdict
		a := o.Approach1
		if a.Calls == nil || a.ErrorRate == nil || a.P50 == nil || a.P95 == nil || a.P99 == nil || a.Cost == nil || o.Approach2.Calls == nil || o.Reasons == nil {
			t.Errorf("%s lacks a documented field", o.Op)
		}
	}
	if verdicts["push"] != "rollback" || verdicts["status"] == "rollback" || verdicts["clone"] != "idle" {
		t.Errorf("verdicts %v", verdicts)
	}
	if len(got.Operations) != len(backends.OpNames()) {
		t.Errorf("%d operations, want every one of %d", len(got.Operations), len(backends.OpNames()))
	}
}

// TestReportOutDir: a scheduled run writes the three forms and says what
// it decided.
func TestReportOutDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ledger, until := reportLedger(t, dir)
	out := filepath.Join(dir, "reports")
	res := runGitgate(t, "", "report", "--ledger", ledger, "--until", until.Format(time.RFC3339), "--out-dir", out)
	if res.Code != exitRollback || !strings.HasPrefix(res.Stdout, "wrote $DIR/reports: decision stay; 1 rollback") {
		t.Fatalf("%+v", res)
	}
	for _, name := range []string{"report.md", "report.html", "report.json"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(out, ".report-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestReportStagesFromFlags: with the flag file, the stages and their
// start come from it and its change log, and the timeline shows the
// change.
func TestReportStagesFromFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ledger, until := reportLedger(t, dir)
	flagPath := filepath.Join(dir, "flags.flagd.json")
	if err := flags.NewFile(backends.OpNames()).Save(flagPath); err != nil {
		t.Fatal(err)
	}
	at := until.Add(-14 * 24 * time.Hour)
	if err := flags.AppendChanges(flags.ChangeLogPath(flagPath), time.Second,
		flags.Change{At: at, By: "ops", Reason: "start", Kind: flags.ChangeRoute, Op: "status", From: "0%", To: "10%", Summary: "status: 10% to approach2"}); err != nil {
		t.Fatal(err)
	}
	f, err := flags.Load(flagPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetRoute("status", 10); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	res := runGitgate(t, "", "report", "--ledger", ledger, "--flags", flagPath, "--until", until.Format(time.RFC3339), "--format", "markdown")
	// push is at 0 % in the flag file: its 10 % calls are history, not a
	// stage under way, and no rollback was recorded, so it is not judged.
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	for _, want := range []string{"| status | 10% |", "| push | 0% | **idle** |", "status (stage): status: 10% to approach2 (start)"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("the report lacks %q:\n%s", want, res.Stdout)
		}
	}
}

func TestReportBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ledger, _ := reportLedger(t, dir)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "pdf"}, `--format: "pdf" is not one of markdown, html, json`},
		{[]string{"--since", "last tuesday"}, `--since: "last tuesday" is not an RFC 3339 time ($TIME), a date (2026-11-01) or a span (4w, 28d, 36h)`},
		{[]string{"--since", "2026-12-01", "--until", "2026-11-01"}, "report: --since ($TIME) must be before --until ($TIME)"},
	} {
		wantCLI(t, runGitgate(t, "", append([]string{"report", "--ledger", ledger}, c.args...)...), failed(c.want))
	}
	res := runGitgate(t, "", "report", "--ledger", filepath.Join(dir, "missing.jsonl"))
	if res.Code != 1 || !strings.Contains(res.Stderr, "the ledger:") || !strings.Contains(res.Stderr, "no such file") {
		t.Errorf("%+v", res)
	}
}

// TestDeployedArgsParse: the CronJobs' and the systemd units' command
// lines (the weekly report and the weekly drill) are ones gitgate accepts.
func TestDeployedArgsParse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ command, cronjob, unit, mustHave string }{
		{"report", "report-cronjob.yaml", "gitgate-report.service", "--out-dir"},
		{"drill", "drill-cronjob.yaml", "gitgate-drill.service", "--config"},
	} {
		for _, args := range [][]string{cronJobArgs(t, "../../deploy/kubernetes/base/"+c.cronjob), unitArgs(t, "../../deploy/systemd/"+c.unit)} {
			if len(args) == 0 || args[0] != c.command {
				t.Fatalf("not a %s command: %q", c.command, args)
			}
			cmd, rest, err := newRootCmd().Find(args)
			if err != nil || cmd.Name() != c.command {
				t.Fatalf("%q: %v", args, err)
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%q: %v", args, err)
			}
			if !slices.Contains(args, c.mustHave) {
				t.Errorf("%q has no %s", args, c.mustHave)
			}
		}
	}
}

// cronJobArgs are the arguments of a CronJob's one container.
func cronJobArgs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cj struct {
		Spec struct {
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Args []string `yaml:"args"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &cj); err != nil {
		t.Fatal(err)
	}
	cs := cj.Spec.JobTemplate.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers", path, len(cs))
	}
	return cs[0].Args
}

// unitArgs are the arguments of a systemd unit's ExecStart (gitgate's).
func unitArgs(t *testing.T, path string) []string {
	t.Helper()
	unit, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var exec []string
	for line := range strings.Lines(string(unit)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart=/usr/local/bin/gitgate "); ok {
			exec = strings.Fields(rest)
		}
	}
	return exec
}
