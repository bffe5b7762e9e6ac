package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promHistory is a history whose newest run is a dry run (left out),
// then a refused run (changed nothing: the per-gateway figures come from
// the run before), a failed run, a pass a week before it, and an aborted
// run before that.
func promHistory() (rs []Result, pass, fail, refused Result) {
	pass = fixtureRun(fixtureStart, Pass)
	fail = fixtureRun(fixtureStart.Add(7*24*time.Hour), Fail)
	refused = Result{ID: NewID(fixtureStart.Add(8 * 24 * time.Hour)), Start: fixtureStart.Add(8 * 24 * time.Hour), End: fixtureStart.Add(8*24*time.Hour + 2*time.Second),
		Verdict: Refused, Reasons: []string{"another drill is running"}}
	dry := fixtureRun(fixtureStart.Add(9*24*time.Hour), DryRun)
	aborted := fixtureRun(fixtureStart.Add(-7*24*time.Hour), Aborted)
	// Out of order on purpose: MetricsRegistry sorts.
	return []Result{pass, dry, aborted, refused, fail}, pass, fail, refused
}

func promParse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	return mfs
}

// promSamples flattens families into "name{label=value,...}" → value, the
// labels in the order given (those not given are left out).
func promSamples(mfs map[string]*dto.MetricFamily, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range labels {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == l {
						ls = append(ls, l+"="+lp.GetValue())
					}
				}
			}
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func promSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// promWant are the samples promHistory must give.
func promWant(pass, fail, refused Result) map[string]float64 {
	return map[string]float64{
		MetricLastRun:                                           promSeconds(refused.End),
		MetricLastSuccess:                                       promSeconds(pass.End),
		MetricLastPassed:                                        0,
		MetricRuns + "{verdict=pass}":                           1,
		MetricRuns + "{verdict=fail}":                           1,
		MetricRuns + "{verdict=aborted}":                        1,
		MetricRuns + "{verdict=refused}":                        1,
		MetricTimeToEffect + "{gateway=gw-1,phase=flag_source}": 0.1824,
		MetricTimeToEffect + "{gateway=gw-1,phase=override}":    0.01225,
		MetricTimeToEffect + "{gateway=gw-1,phase=restore}":     0.240,
		MetricTimeToEffect + "{gateway=gw-2,phase=flag_source}": 0.611,
		MetricTimeToEffect + "{gateway=gw-2,phase=override}":    0.0045,
		MetricTimeToEffect + "{gateway=gw-2,phase=restore}":     0.590,
		MetricResidualCalls + "{gateway=gw-1}":                  0,
		MetricResidualCalls + "{gateway=gw-2}":                  1,
		MetricResidualCalls + "{gateway=gw-3}":                  0,
		MetricFailedCalls + "{gateway=gw-1}":                    0,
		MetricFailedCalls + "{gateway=gw-2}":                    2,
		MetricFailedCalls + "{gateway=gw-3}":                    0,
	}
}

func promDiff(t *testing.T, got, want map[string]float64) {
	t.Helper()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected sample %s = %g", k, got[k])
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing sample %s (want %g)", k, w)
		case g != w && (g-w > 1e-9*max(1, w) || w-g > 1e-9*max(1, w)):
			t.Errorf("%s = %g, want %g", k, g, w)
		}
	}
}

func TestWriteTextfileHasTheHistorysFigures(t *testing.T) {
	rs, pass, fail, refused := promHistory()
	path := filepath.Join(t.TempDir(), "gitgate_drill.prom")
	if err := WriteTextfile(path, rs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("textfile mode %v, want 0644 (node_exporter runs as another user)", fi.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mfs := promParse(t, f)
	promDiff(t, promSamples(mfs, LabelVerdict, LabelGateway, LabelPhase), promWant(pass, fail, refused))
	if got := mfs[MetricRuns].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("%s is a %v, want a counter", MetricRuns, got)
	}
	if got := mfs[MetricLastRun].GetType(); got != dto.MetricType_GAUGE {
		t.Errorf("%s is a %v, want a gauge", MetricLastRun, got)
	}
}

func TestMetricsOfHistoriesWithoutAPass(t *testing.T) {
	dir := t.TempDir()
	read := func(rs []Result) map[string]float64 {
		t.Helper()
		path := filepath.Join(dir, "gitgate_drill.prom")
		if err := WriteTextfile(path, rs); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return promSamples(promParse(t, f), LabelVerdict, LabelGateway, LabelPhase)
	}
	// No history: no sample at all (the alert's absent() speaks).
	promDiff(t, read(nil), map[string]float64{})
	// Only a dry run: the same.
	promDiff(t, read([]Result{fixtureRun(fixtureStart, DryRun)}), map[string]float64{})
	// Only refused runs: when and that it did not pass, nothing per gateway.
	refused := Result{ID: NewID(fixtureStart), Start: fixtureStart, Verdict: Refused}
	promDiff(t, read([]Result{refused}), map[string]float64{
		MetricLastRun: promSeconds(fixtureStart), MetricLastPassed: 0, MetricRuns + "{verdict=refused}": 1,
	})
	// A pass that is the last run.
	pass := fixtureRun(fixtureStart.Add(time.Hour), Pass)
	got := read([]Result{refused, pass})
	for k, w := range map[string]float64{MetricLastPassed: 1, MetricLastRun: promSeconds(pass.End), MetricLastSuccess: promSeconds(pass.End)} {
		if got[k] != w {
			t.Errorf("%s = %g, want %g", k, got[k], w)
		}
	}
}

// pushgatewayPath is where Debian's prometheus-pushgateway package
// installs the Pushgateway (make pushgateway installs it).
const pushgatewayPath = "/usr/bin/prometheus-pushgateway"

// startPushgateway runs a real Pushgateway on loopback, without
// persistence, for the test, and returns its URL.
func startPushgateway(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(pushgatewayPath); err != nil {
		t.Fatalf("%s is missing (make pushgateway, or apt-get install prometheus-pushgateway): this test needs it and does not skip", pushgatewayPath)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs testkit.SyncBuffer
	cmd := exec.CommandContext(ctx, pushgatewayPath, "--web.listen-address="+addr, "--persistence.file=")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil && t.Failed() { // killed by the cancel: its status only matters to a failure
			t.Logf("pushgateway exited: %v", err)
		}
		if t.Failed() {
			t.Logf("pushgateway's log:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	testkit.EventuallyNil(t, "the Pushgateway is ready", func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the Pushgateway exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	return url
}

// promPushed is what the Pushgateway serves for job, in the test's sample
// form (the Pushgateway's own push_time_seconds left out).
func promPushed(t *testing.T, url, job string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mfs := promParse(t, resp.Body)
	for name, mf := range mfs {
		var kept []*dto.Metric
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "job" && lp.GetValue() == job {
					kept = append(kept, m)
				}
			}
		}
		mf.Metric = kept
		if len(kept) == 0 || name == "push_time_seconds" || name == "push_failure_time_seconds" {
			delete(mfs, name)
		}
	}
	return promSamples(mfs, LabelVerdict, LabelGateway, LabelPhase)
}

func TestPushReplacesTheGroupOnARealPushgateway(t *testing.T) {
	url := startPushgateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	const job = "gitgate_drill"

	rs, pass, fail, refused := promHistory()
	if err := Push(ctx, url, job, rs); err != nil {
		t.Fatal(err)
	}
	promDiff(t, promPushed(t, url, job), promWant(pass, fail, refused))

	// PUT, not POST: pushing a history with no pass (another history
	// directory, say) leaves no last success behind from the push before.
	only := []Result{refused}
	if err := Push(ctx, url, job, only); err != nil {
		t.Fatal(err)
	}
	promDiff(t, promPushed(t, url, job), map[string]float64{
		MetricLastRun: promSeconds(refused.End), MetricLastPassed: 0, MetricRuns + "{verdict=refused}": 1,
	})

	// A user and password in the URL are basic authentication (this
	// Pushgateway asks for none), never part of an error.
	authURL := strings.Replace(url, "http://", "http://drill:s3cr3t-pw@", 1)
	if err := Push(ctx, authURL, job, rs); err != nil {
		t.Fatal(err)
	}
	promDiff(t, promPushed(t, url, job), promWant(pass, fail, refused))
}

func TestPushErrorsKeepThePasswordOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://drill:s3cr3t-pw@" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	for _, url := range []string{closed, "drill:s3cr3t-pw@no-scheme:9091", "http://drill:s3cr3t-pw@[::1"} {
		err := Push(ctx, url, "gitgate_drill", nil)
		if err == nil {
			t.Errorf("Push to %s: no error", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("Push's error shows the password: %v", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Push to %s waited for the deadline: %v", url, err)
		}
	}
}

// The Pushgateway here asks for no authentication, so what Push sends for
// a URL with a user and password is recorded by a stand-in.
func TestPushSendsTheURLsUserAsBasicAuth(t *testing.T) {
	type request struct {
		method, path, user, pass string
		ok                       bool
	}
	got := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		got <- request{r.Method, r.URL.Path, user, pass, ok}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	authURL := strings.Replace(srv.URL, "http://", "http://drill:s3cr3t-pw@", 1)
	if err := Push(ctx, authURL, "gitgate_drill", nil); err != nil {
		t.Fatal(err)
	}
	want := request{http.MethodPut, "/metrics/job/gitgate_drill", "drill", "s3cr3t-pw", true}
	if r := <-got; r != want {
		t.Errorf("request %+v, want %+v", r, want)
	}
}
