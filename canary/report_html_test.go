package canary

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/browsertest"
)

// hostile is what an automatic rollback's reason might carry from a
// backend's error text.
const hostile = `<script>alert("pwned")</script> P50 regression`

// htmlTestCharts is how many charts htmlTestReport's report has: six
// weekly decision signals and the weekly cost; per operation (push,
// status, clone) the latency distributions and the daily error rate; the
// stage timeline.
const htmlTestCharts = 6 + 1 + 3*2 + 1

// htmlTestReport is four weeks of a generated-looking ledger: status goes
// to 10 % on day 10 and 50 % on day 20 and does as well there; push goes
// to 10 % on day 14, fails a fifth of its approach2 calls and is rolled
// back (for a reason with markup in it) on day 18; clone stays on
// approach1 and is slow, so that the P95 signal calls for migration. A
// sandbox ends every day, its cost growing 8 % a week. The change log
// adds the route changes, a drill and a kill switch with its release.
var htmlTestReport = sync.OnceValues(func() (*Report, error) {
	r := rand.New(rand.NewPCG(12, 3))
	until := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	since := until.Add(-28 * 24 * time.Hour)
	day := func(d float64) time.Time { return since.Add(time.Duration(d * 24 * float64(time.Hour))) }
	statusStage := func(at time.Time) int {
		switch {
		case at.Before(day(10)):
			return 0
		case at.Before(day(20)):
			return 10
		}
		return 50
	}
	pushStage := func(at time.Time) int {
		if at.Before(day(14)) || !at.Before(day(18)) {
			return 0
		}
		return 10
	}
	var es Entries
	for at := since; at.Before(until); at = at.Add(3 * time.Minute) {
		hour := float64(at.Hour())
		inFlight := 3 + int(8*math.Max(0, math.Sin(math.Pi*(hour-6)/12))) + r.IntN(3)
		for _, op := range []backends.Op{backends.OpPush, backends.OpStatus, backends.OpClone} {
			stage, med, fail2 := 0, 300*time.Millisecond, 0.01
			switch op {
			case backends.OpPush:
				stage, med, fail2 = pushStage(at), 900*time.Millisecond, 0.2
			case backends.OpStatus:
				stage, med = statusStage(at), 40*time.Millisecond
			case backends.OpClone:
				med = 1500 * time.Millisecond
			}
			e := drawCall(r, 0.01, med, 0.6, 0)
			e.At, e.Op, e.Stage, e.InFlight = at, op, stage, inFlight
			e.Routed, e.Backend = backends.Approach1, backends.Approach1
			if r.IntN(100) < stage {
				e2 := drawCall(r, fail2, med, 0.6, 0)
				e2.At, e2.Op, e2.Stage, e2.InFlight = at, op, stage, inFlight
				e2.Routed, e2.Backend = backends.Approach2, backends.Approach2
				e = e2
			}
			es = append(es, e)
		}
	}
	for d := range 28 {
		es = append(es, Entry{At: day(float64(d) + 0.5), Kind: KindSandbox, Backend: backends.Approach1, Duration: 20 * time.Hour,
			CostUSD: 40 * math.Pow(1.08, float64(d)/7)})
	}
	es = append(es, Entry{At: day(18), Kind: KindRollback, Op: backends.OpPush, Stage: -1, Detail: hostile})
	events := []Event{
		{At: day(10), Op: backends.OpStatus, Kind: EventStage, Stage: 10, What: "status to 10%"},
		{At: day(14), Op: backends.OpPush, Kind: EventStage, Stage: 10, What: "push to 10%"},
		{At: day(20), Op: backends.OpStatus, Kind: EventStage, Stage: 50, What: "status to 50%"},
		{At: day(22), Kind: EventDrill, Stage: -1, What: "kill-switch drill"},
		{At: day(24), Kind: EventKill, Stage: -1, What: "kill switch engaged"},
		{At: day(24.1), Kind: EventRelease, Stage: -1, What: "kill switch released"},
	}
	return BuildReport(context.Background(), es, ReportConfig{Since: since, Until: until, Source: "memory (test)", Events: events,
		Ops: []backends.Op{backends.OpPush, backends.OpStatus, backends.OpClone}})
})

func writeHTML(t *testing.T) (*Report, []byte) {
	t.Helper()
	rep, err := htmlTestReport()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	return rep, b.Bytes()
}

// The fixture is what the tests below assume: push rolled back for the
// hostile reason, status on its way, the decision to migrate.
func TestHTMLReportFixture(t *testing.T) {
	rep, _ := writeHTML(t)
	got := map[backends.Op]Verdict{}
	for _, o := range rep.Operations {
		got[o.Op] = o.Verdict
		if o.Op == backends.OpPush && !strings.Contains(strings.Join(o.Reasons, "\n"), "<script>") {
			t.Errorf("push's reasons %q do not carry the hostile rollback reason", o.Reasons)
		}
	}
	if got[backends.OpPush] != VerdictRollback || got[backends.OpStatus] == VerdictRollback || got[backends.OpClone] != VerdictIdle {
		t.Errorf("verdicts %v; want push rollback, status not, clone idle", got)
	}
	if rep.Decision.Verdict != Migrate {
		t.Errorf("decision %s (%q); want migrate", rep.Decision.Verdict, rep.Decision.Reasons)
	}
	if n := rep.HTMLCharts(); n != htmlTestCharts {
		t.Errorf("HTMLCharts() = %d; want %d", n, htmlTestCharts)
	}
}

// The file parses as HTML, carries the policy, and holds one figure per
// chart, each with a title and a caption that label its SVG; every SVG
// is well-formed XML with a <title>.
func TestHTMLReportWellFormed(t *testing.T) {
	_, page := writeHTML(t)
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*html.Node{}
	var svgs, figures, metas []*html.Node
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if id := attr(n, "id"); id != "" {
			if ids[id] != nil {
				t.Errorf("id %q twice", id)
			}
			ids[id] = n
		}
		switch n.Data {
		case "svg":
			svgs = append(svgs, n)
		case "figure":
			figures = append(figures, n)
		case "meta":
			metas = append(metas, n)
		case "script", "iframe", "object", "embed", "link", "img":
			t.Errorf("a <%s> element in the report", n.Data)
		}
	}
	if !slices.ContainsFunc(metas, func(m *html.Node) bool {
		return strings.EqualFold(attr(m, "http-equiv"), "Content-Security-Policy") && attr(m, "content") == HTMLPolicy
	}) {
		t.Errorf("no Content-Security-Policy meta tag with %q", HTMLPolicy)
	}
	if len(svgs) != htmlTestCharts || len(figures) != htmlTestCharts {
		t.Errorf("%d svg elements in %d figures; want %d charts", len(svgs), len(figures), htmlTestCharts)
	}
	for i, s := range svgs {
		if attr(s, "role") != "img" {
			t.Errorf("svg %d: role %q", i, attr(s, "role"))
		}
		for _, id := range strings.Fields(attr(s, "aria-labelledby")) {
			if label := ids[id]; label == nil || len(strings.TrimSpace(textOf(label))) < 10 {
				t.Errorf("svg %d: its label %q is missing or empty", i, id)
			}
		}
		if len(strings.Fields(attr(s, "aria-labelledby"))) != 2 {
			t.Errorf("svg %d: labelled by %q; want a title and a caption", i, attr(s, "aria-labelledby"))
		}
		if !hasChild(s, "title") {
			t.Errorf("svg %d has no <title>", i)
		}
		if !hasChild(s, "g") {
			t.Errorf("svg %d draws nothing", i)
		}
	}
	raw := regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAll(page, -1)
	if len(raw) != htmlTestCharts {
		t.Errorf("%d raw svg documents; want %d", len(raw), htmlTestCharts)
	}
	for i, s := range raw {
		d := xml.NewDecoder(bytes.NewReader(s))
		texts := 0
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("svg %d is not well-formed XML: %v", i, err)
				break
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
				texts++
			}
		}
		if texts < 4 {
			t.Errorf("svg %d has %d text elements: no title, labels or ticks", i, texts)
		}
	}
}

// No URL anywhere but the SVG and XLink namespace names, which are names
// and never fetched; no attribute that could fetch.
func TestHTMLReportRequestsNothing(t *testing.T) {
	_, page := writeHTML(t)
	s := strings.NewReplacer(`xmlns="http://www.w3.org/2000/svg"`, "", `xmlns:xlink="http://www.w3.org/1999/xlink"`, "").Replace(string(page))
	for _, bad := range []string{"http:", "https:", "//", "url(", "@import", "src=", "href=", "ftp:", "file:"} {
		if i := strings.Index(strings.ToLower(s), bad); i >= 0 {
			t.Errorf("%q in the report: …%s…", bad, s[max(i-60, 0):min(i+60, len(s))])
		}
	}
	if n := strings.Count(string(page), "http://"); n != 2*htmlTestCharts {
		t.Errorf("%d http:// in the report; want the two namespace names of each of the %d charts", n, htmlTestCharts)
	}
}

// Text from the ledger is escaped wherever it lands: the hostile reason
// shows as text in the operation's reasons and the timeline, never as
// markup.
func TestHTMLReportEscapes(t *testing.T) {
	_, page := writeHTML(t)
	if bytes.Contains(bytes.ToLower(page), []byte("<script")) {
		t.Error("an unescaped <script in the report")
	}
	if n := bytes.Count(page, []byte(`&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;`)); n < 2 {
		t.Errorf("the hostile reason appears escaped %d times; want in the reasons and the timeline", n)
	}
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for n := range doc.Descendants() {
		if n.Type == html.TextNode && strings.Contains(n.Data, hostile) {
			found++
		}
	}
	if found < 2 {
		t.Errorf("the hostile reason is text in %d places; want at least 2", found)
	}
}

// The report in a real browser: Debian's Chromium renders every chart to
// a box of some size, asks for nothing but the file, and logs no policy
// violation. The screenshot is kept in the test's temp directory.
func TestHTMLReportInChromium(t *testing.T) {
	rep, page := writeHTML(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, err := browsertest.Open(ctx, path, filepath.Join(dir, "profile"), "svg")
	if errors.Is(err, browsertest.ErrNoChromium) {
		t.Fatalf("%v: this test needs the browser and does not skip", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	if err := os.WriteFile(shot, got.Screenshot, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(got.Screenshot))
	if len(got.Boxes) != rep.HTMLCharts() || len(got.Boxes) != htmlTestCharts {
		t.Errorf("%d svg elements rendered; want %d", len(got.Boxes), htmlTestCharts)
	}
	for i, b := range got.Boxes {
		if b.Width < 100 || b.Height < 50 {
			t.Errorf("svg %d rendered %v×%v pixels", i, b.Width, b.Height)
		}
	}
	self, err := browsertest.URL(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Requests) != 1 || got.Requests[0] != self {
		t.Errorf("requests %q; want only %s", got.Requests, self)
	}
	for _, m := range got.Messages {
		t.Errorf("browser message: %s", m)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasChild(n *html.Node, name string) bool {
	for c := range n.ChildNodes() {
		if c.Type == html.ElementNode && c.Data == name {
			return true
		}
	}
	return false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// Reports with little in them still make a well-formed file: an empty
// ledger, three days (no whole week), calls that all took no time.
func TestHTMLReportSparse(t *testing.T) {
	until := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	zero := Entries{}
	for i := range 50 {
		zero = append(zero, Entry{At: until.Add(-time.Duration(i+1) * time.Hour), Kind: KindCall, Op: backends.OpStatus,
			Routed: backends.Approach1, Backend: backends.Approach1, Stage: 0})
	}
	for _, tc := range []struct {
		name   string
		src    Entries
		period time.Duration
		charts int
	}{
		// four weeks of nothing: only the monthly cost, $0 a week, has a
		// value every week
		{"empty", Entries{}, 28 * 24 * time.Hour, 1},
		// three days: no week for the signals; latency, daily errors, timeline
		{"zero latencies", zero, 3 * 24 * time.Hour, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := BuildReport(context.Background(), tc.src, ReportConfig{Since: until.Add(-tc.period), Until: until, Source: "memory"})
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := rep.WriteHTML(&b); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(&b)
			if err != nil {
				t.Fatal(err)
			}
			svgs := 0
			for n := range doc.Descendants() {
				if n.Type == html.ElementNode && n.Data == "svg" {
					svgs++
				}
			}
			if svgs != tc.charts || rep.HTMLCharts() != tc.charts {
				t.Errorf("%d svg elements, HTMLCharts() %d; want %d", svgs, rep.HTMLCharts(), tc.charts)
			}
		})
	}
}
