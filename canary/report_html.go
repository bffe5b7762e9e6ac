package canary

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/gitgate/gitgate/backends"
)

// The HTML form of the report: one self-contained file. Its charts are
// inline SVG drawn by gonum/plot (fonts named, not embedded: the
// Liberation families gonum measures with), its style is inline, it has no
// script, and its Content-Security-Policy forbids every fetch, so that a
// browser opening it asks no host for anything.

// HTMLPolicy is the Content-Security-Policy the HTML report carries.
const HTMLPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

// The size of every chart, in points.
const (
	chartWidth  = 640
	chartHeight = 250
)

// WriteHTML writes the report as one self-contained HTML file with its
// charts.
func (r *Report) WriteHTML(w io.Writer) error {
	v, err := r.htmlView()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := htmlReport.Execute(&b, v); err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	_, err = b.WriteTo(w)
	return err
}

// HTMLCharts is how many charts WriteHTML draws for r (0 when it cannot
// draw them: WriteHTML then fails).
func (r *Report) HTMLCharts() int {
	v, err := r.htmlView()
	if err != nil {
		return 0
	}
	n := len(v.SignalCharts) + len(v.TimelineCharts)
	for _, o := range v.Ops {
		n += len(o.Charts)
	}
	return n
}

// chart is one drawn chart: a title and a caption for every reader, the
// SVG for those who see it.
type chart struct {
	ID, Title, Caption string
	SVG                template.HTML
}

type htmlView struct {
	Policy         string
	Title          string
	Period         string
	Source         string
	Verdict        string
	VerdictClass   string
	Reasons        []string
	Weeks          int
	Signals        []signalRow
	SignalCharts   []chart
	Overview       []overviewRow
	DrillNote      string
	Ops            []opView
	TimelineCharts []chart
	Timeline       []eventRow
	Method         string
}

type signalRow struct {
	Name, Threshold, Latest, Over string
	Exceeded                      bool
}

type overviewRow struct {
	Op, Stage, Verdict, Calls, Errors, P95, Mismatches, Cost string
}

type opView struct {
	Op, Verdict, Stage, Baseline string
	Reasons                      []string
	Backends                     []backendRow
	Shadow                       string
	Examples                     []string
	Tests                        []testRow
	Charts                       []chart
}

type backendRow struct {
	Name, Calls, Failures, FellBack, ErrorRate, P50, P95, P99, Cost string
}

type testRow struct {
	Metric, A1, A2, A1Bounds, A2Bounds, Floor, Result, Why string
}

type eventRow struct {
	At, Op, Kind, What string
}

// htmlView turns the report into what the template shows, drawing the
// charts.
func (r *Report) htmlView() (*htmlView, error) {
	d := r.Decision
	v := &htmlView{
		Policy:       HTMLPolicy,
		Title:        fmt.Sprintf("gitgate canary report, %s to %s", r.Since.Format(time.DateOnly), r.Until.Format(time.DateOnly)),
		Period:       fmt.Sprintf("%s to %s (%s)", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), span(r.Until.Sub(r.Since))),
		Source:       r.Source,
		Verdict:      strings.ToUpper(string(d.Verdict)),
		VerdictClass: string(d.Verdict),
		Reasons:      d.Reasons,
		Weeks:        len(d.Weeks),
	}
	for _, s := range d.Signals {
		over := fmt.Sprint(s.WeeksExceeded)
		if s.Name == SignalCostGrowth || s.Name == SignalErrorTrend {
			over = "trend: " + s.Note
		}
		v.Signals = append(v.Signals, signalRow{Name: s.Name, Threshold: signalValue(s.Name, s.Threshold), Latest: signalValue(s.Name, s.Value), Over: over, Exceeded: s.Exceeded})
	}
	ids := 0
	// add(list)(c, err) appends a drawn chart c, numbered, to list.
	add := func(list *[]chart) func(*chart, error) error {
		return func(c *chart, err error) error {
			if err != nil {
				return fmt.Errorf("report: html: %w", err)
			}
			if c == nil {
				return nil
			}
			ids++
			c.ID = fmt.Sprintf("chart-%d", ids)
			c.SVG = labelSVG(c.SVG, c.ID, c.Title)
			*list = append(*list, *c)
			return nil
		}
	}
	for _, s := range d.Signals {
		if err := add(&v.SignalCharts)(signalChart(d, s, r.Settings.Decision)); err != nil {
			return nil, err
		}
	}
	if err := add(&v.SignalCharts)(costChart(d, r.Settings.Decision)); err != nil {
		return nil, err
	}

	v.DrillNote = r.drillNote()
	for _, o := range r.Operations {
		a1, a2 := o.Approach1, o.Approach2
		v.Overview = append(v.Overview, overviewRow{Op: string(o.Op), Stage: fmt.Sprintf("%d%%", o.Stage), Verdict: string(o.Verdict),
			Calls: fmt.Sprintf("%d / %d", a1.Calls, a2.Calls), Errors: pct(a1.ErrorRate) + " / " + pct(a2.ErrorRate),
			P95: msec(a1.P95) + " / " + msec(a2.P95), Mismatches: fmt.Sprintf("%d of %d", o.Shadow.Mismatch, o.Shadow.Compared),
			Cost: usd(a1.CostPerOp) + " / " + usd(a2.CostPerOp)})
		if o.Verdict == VerdictIdle && o.Approach1.Calls == 0 {
			continue
		}
		ov := opView{Op: string(o.Op), Verdict: string(o.Verdict), Baseline: o.Baseline, Reasons: o.Reasons, Examples: o.Shadow.Examples}
		if !o.Since.IsZero() {
			ov.Stage = fmt.Sprintf("Stage %d%% since %s (%s).", o.Stage, o.Since.Format(time.RFC3339), span(time.Duration(o.TimeInStage*float64(time.Second))))
		} else {
			ov.Stage = fmt.Sprintf("Stage %d%%.", o.Stage)
		}
		for _, row := range []struct {
			name backends.Name
			s    BackendSummary
		}{{backends.Approach1, a1}, {backends.Approach2, a2}} {
			s := row.s
			ov.Backends = append(ov.Backends, backendRow{Name: string(row.name), Calls: fmt.Sprint(s.Calls), Failures: fmt.Sprint(s.Failures), FellBack: fmt.Sprint(s.FellBack),
				ErrorRate: fmt.Sprintf("%s (%s–%s)", pct(s.ErrorRate), pct(s.ErrorCI[0]), pct(s.ErrorCI[1])),
				P50:       msec(s.P50), P95: msec(s.P95), P99: msec(s.P99), Cost: usd(s.CostPerOp)})
		}
		sh := o.Shadow
		ov.Shadow = fmt.Sprintf("Shadow: %d compared, %d mismatched (%s, interval %s–%s); %d stale, %d unfinished, %d skipped.",
			sh.Compared, sh.Mismatch, pct(sh.MismatchRate), pct(sh.MismatchCI[0]), pct(sh.MismatchCI[1]), sh.Stale, sh.Unfinished, sh.Skipped)
		for _, t := range o.Tests {
			ov.Tests = append(ov.Tests, testRow{Metric: t.Metric, A1: testValue(t.Metric, t.Approach1), A2: testValue(t.Metric, t.Approach2),
				A1Bounds: bounds(t.Metric, t.A1Bounds), A2Bounds: bounds(t.Metric, t.A2Bounds), Floor: floorValue(t.Metric, t.Floor),
				Result: string(t.Result), Why: t.Why})
		}
		if err := add(&ov.Charts)(latencyChart(o.Op, r.Charts.Latency[o.Op])); err != nil {
			return nil, err
		}
		if err := add(&ov.Charts)(errorRateChart(o.Op, r.Charts.Daily[o.Op], dailyAlpha(r.Settings.Judge))); err != nil {
			return nil, err
		}
		v.Ops = append(v.Ops, ov)
	}

	if err := add(&v.TimelineCharts)(timelineChart(r)); err != nil {
		return nil, err
	}
	for _, e := range r.Timeline {
		op := string(e.Op)
		if op == "" {
			op = "every operation"
		}
		v.Timeline = append(v.Timeline, eventRow{At: e.At.Format(time.RFC3339), Op: op, Kind: string(e.Kind), What: e.What})
	}

	j := r.Settings.Judge
	v.Method = fmt.Sprintf("Every call is judged, not hourly averages. Bounds are anytime-valid confidence sequences, so this report, "+
		"gitgate canary advance and the automatic rollback may look as often as they like: the chance that a stage no worse than "+
		"approach1 is ever judged rollback is at most %s per operation and stage, and the chance that a worse one is judged "+
		"advance at most %s. A difference counts only beyond its floor: error rate %s points or %.0f%% of approach1's; "+
		"latency %s or %.0f%% of approach1's quantile. Shadow mismatches may reach %s; cost per operation %.1f× approach1's. "+
		"At least %d approach2 calls before advancing.",
		pct(j.FalseAlarmRate), pct(j.MissRate), trim(100*j.ErrorFloor.Abs), 100*j.ErrorFloor.Rel, msec(j.LatencyFloor.Abs), 100*j.LatencyFloor.Rel,
		pct(j.MaxMismatchRate), j.MaxCostRatio, j.MinCalls)
	return v, nil
}

// dailyAlpha is the miscoverage of the daily error-rate bands: the one
// the judge gives each backend's error-rate interval (the false-alarm
// rate split among the rollback tests, then between the two backends).
func dailyAlpha(j JudgeConfig) float64 {
	return j.WithDefaults().FalseAlarmRate / float64(rollbackTests) / 2
}

// labelSVG makes gonum's SVG document an inline, labelled image: the XML
// prolog and comment go, the <svg> element gains its role, its label and
// a <title>.
func labelSVG(svg template.HTML, id, title string) template.HTML {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	open := strings.Index(s, ">")
	if open < 0 {
		return template.HTML(s)
	}
	attrs := fmt.Sprintf(` class="chart" role="img" aria-labelledby="%s-title %s-caption"`, id, id)
	s = s[:len("<svg")] + attrs + s[len("<svg"):open+1] + "\n<title>" + html.EscapeString(title) + "</title>" + s[open+1:]
	return template.HTML(s) // gonum escapes its text; the title is escaped above
}

// The colours: approach1 blue, approach2 orange (Okabe–Ito), thresholds
// red, and the timeline's markers.
var (
	colorA1        = color.NRGBA{R: 0x00, G: 0x72, B: 0xB2, A: 0xFF}
	colorA2        = color.NRGBA{R: 0xE6, G: 0x9F, B: 0x00, A: 0xFF}
	colorThreshold = color.NRGBA{R: 0xC0, G: 0x10, B: 0x10, A: 0xFF}
	colorMuted     = color.NRGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xFF}
	opColors       = []color.NRGBA{colorA1, colorA2, {R: 0x00, G: 0x9E, B: 0x73, A: 0xFF}, {R: 0xCC, G: 0x79, B: 0xA7, A: 0xFF},
		{R: 0x56, G: 0xB4, B: 0xE9, A: 0xFF}, {R: 0xD5, G: 0x5E, B: 0x00, A: 0xFF}, {R: 0x33, G: 0x33, B: 0x33, A: 0xFF}}
)

func backendColor(name backends.Name) color.NRGBA {
	if name == backends.Approach2 {
		return colorA2
	}
	return colorA1
}

func translucent(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

// chartFont is the charts' typeface: the sans-serif Liberation that
// gonum measures text with, named in the SVG (the browser uses the
// installed one, or its own sans-serif).
var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

func setFont(sty *text.Style, size vg.Length) {
	sty.Font = font.From(chartFont, size)
}

// newPlot is a plot with the report's axis labels and a grid. Its title
// is the figure's, above it in the HTML, and the SVG's <title>; the plot
// keeps it for error messages only.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	setFont(&p.X.Label.TextStyle, 11)
	setFont(&p.Y.Label.TextStyle, 11)
	setFont(&p.X.Tick.Label, 10)
	setFont(&p.Y.Tick.Label, 10)
	p.X.Padding, p.Y.Padding = vg.Points(2), vg.Points(2)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = color.Gray{Y: 0xE0}, color.Gray{Y: 0xE0}
	p.Add(g)
	return p
}

// timeAxis sets p's x axis to dates.
func timeAxis(p *plot.Plot, from, to time.Time) {
	p.X.Tick.Marker = plot.TimeTicks{Format: "Jan 2", Ticker: dayTicks{}}
	p.X.Min, p.X.Max = unix(from), unix(to)
}

// dayTicks puts a date every day, two days, a week or four weeks, fewer
// than ten in all, at midnight UTC.
type dayTicks struct{}

func (dayTicks) Ticks(lo, hi float64) []plot.Tick {
	const day = 24 * 3600
	step := float64(day)
	for _, s := range []float64{day, 2 * day, 7 * day, 28 * day, 91 * day} {
		step = s
		if (hi-lo)/s < 9 {
			break
		}
	}
	var ticks []plot.Tick
	for t := math.Ceil(lo/day) * day; t <= hi; t += day {
		if math.Mod(t-math.Ceil(lo/day)*day, step) == 0 {
			ticks = append(ticks, plot.Tick{Value: t, Label: time.Unix(int64(t), 0).UTC().Format("Jan 2")})
		} else if step <= 7*day {
			ticks = append(ticks, plot.Tick{Value: t}) // a minor tick every day
		}
	}
	return ticks
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// render draws p, with its legend (if any) beside it on the right, as an
// SVG document. gonum panics on data it cannot draw (a log axis over zero,
// say); that becomes an error.
func render(p *plot.Plot, legend *plot.Legend) (svg template.HTML, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("draw %q: %v", p.Title.Text, e)
		}
	}()
	title := p.Title.Text
	p.Title.Text = "" // the figure's caption shows it
	defer func() { p.Title.Text = title }()
	height := vg.Length(chartHeight)
	if legend != nil {
		// A long legend (the timeline's operations) makes the chart taller.
		lr := legend.Rectangle(draw.Canvas{})
		height = max(height, lr.Max.Y-lr.Min.Y+vg.Points(24))
	}
	c := vgsvg.New(chartWidth, height)
	dc := draw.Crop(draw.New(c), vg.Points(4), -vg.Points(4), vg.Points(4), -vg.Points(8))
	if legend != nil {
		lr := legend.Rectangle(dc)
		lw := lr.Max.X - lr.Min.X + vg.Points(16)
		p.Draw(draw.Crop(dc, 0, -lw, 0, 0))
		legend.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-lw+vg.Points(12), 0, 0, -vg.Points(4)))
	} else {
		p.Draw(dc)
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil // gonum's SVG, its text escaped by vgsvg
}

// sideLegend is a legend drawn beside the plot.
func sideLegend() *plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.Padding = vg.Points(5)
	setFont(&l.TextStyle, 10)
	return &l
}

func lineOf(xys plotter.XYs, c color.Color, dashes ...vg.Length) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1.5), dashes
	return l, nil
}

// signalUnit scales a signal's value for its chart's axis.
func signalUnit(name string) (scale float64, unit string) {
	switch name {
	case SignalErrorRate:
		return 100, "error rate (%)"
	case SignalCostPerOp:
		return 1, "USD per call"
	case SignalMonthlyCost:
		return 1, "USD per month"
	case SignalP95:
		return 1, "P95 latency (ms)"
	case SignalQueueP95:
		return 1, "P95 queue wait (ms)"
	case SignalPeakConcurrency:
		return 1, "calls in flight"
	}
	return 1, name
}

// signalChart draws one weekly signal against its threshold (the error
// rate also with its weighted trend line). The trends have charts of
// their own (cost) or are drawn on another's (errors): none here.
func signalChart(d Decision, s Signal, cfg DecisionConfig) (*chart, error) {
	if s.Name == SignalCostGrowth || s.Name == SignalErrorTrend || len(s.Weekly) == 0 {
		return nil, nil
	}
	scale, unit := signalUnit(s.Name)
	title := fmt.Sprintf("Decision signal %s per week", s.Name)
	p := newPlot(title, "week starting", unit)
	p.Y.Min = 0
	from, to := d.Weeks[0].Start, d.Weeks[len(d.Weeks)-1].Start.Add(week)
	timeAxis(p, from, to)
	var xys, over plotter.XYs
	for _, pt := range s.Weekly {
		xy := plotter.XY{X: unix(pt.At.Add(week / 2)), Y: scale * pt.Value}
		xys = append(xys, xy)
		if pt.Value > s.Threshold {
			over = append(over, xy)
		}
	}
	leg := sideLegend()
	l, err := lineOf(xys, colorA1)
	if err != nil {
		return nil, err
	}
	pts, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	pts.Color, pts.Shape = colorA1, draw.CircleGlyph{}
	p.Add(l, pts)
	leg.Add("approach1, week", l, pts)
	if len(over) > 0 {
		o, err := plotter.NewScatter(over)
		if err != nil {
			return nil, err
		}
		o.Color, o.Shape, o.Radius = colorThreshold, draw.CircleGlyph{}, vg.Points(4)
		p.Add(o)
		leg.Add("above threshold", o)
	}
	th, err := lineOf(plotter.XYs{{X: unix(from), Y: scale * s.Threshold}, {X: unix(to), Y: scale * s.Threshold}}, colorThreshold, vg.Points(6), vg.Points(3))
	if err != nil {
		return nil, err
	}
	p.Add(th)
	leg.Add("threshold", th)
	caption := fmt.Sprintf("Approach1's %s for each whole week (plotted mid-week) against the threshold of %s (dashed): above it in %d of %d weeks; %d weeks call for migration, so this signal %s.",
		s.Name, formatSignal(s.Name, s.Threshold), s.WeeksExceeded, len(s.Weekly), cfg.MinWeeks, map[bool]string{true: "calls for migration", false: "does not call for migration"}[s.Exceeded])
	if s.Name == SignalErrorRate {
		if trend, ok := errorTrendLine(d); ok {
			tl, err := lineOf(trend, colorMuted, vg.Points(2), vg.Points(2))
			if err != nil {
				return nil, err
			}
			p.Add(tl)
			leg.Add("weighted trend", tl)
			for _, t := range d.Signals {
				if t.Name == SignalErrorTrend {
					caption += fmt.Sprintf(" The dotted line is the weighted least-squares trend (weights: the week's calls): %+.2f points a week, %s; it calls for migration only when upward and significant (%s).",
						100*t.Value, t.Note, yesNoPlain(t.Exceeded))
				}
			}
		}
	}
	p.Y.Max *= 1.08 // room for the markers at the top
	svg, err := render(p, leg)
	if err != nil {
		return nil, err
	}
	return &chart{Title: title, Caption: caption, SVG: svg}, nil
}

func yesNoPlain(b bool) string {
	if b {
		return "it does"
	}
	return "it does not"
}

// errorTrendLine is the error-rate trend the decision fits (weights
// proportional to the weeks' calls), in per cent, across the weeks.
func errorTrendLine(d Decision) (plotter.XYs, bool) {
	var xs, ys, ws []float64
	for _, s := range d.Signals {
		if s.Name != SignalErrorTrend {
			continue
		}
		for _, pt := range s.Weekly {
			for i, w := range d.Weeks {
				if w.Start.Equal(pt.At) && w.Calls > 0 {
					xs, ys, ws = append(xs, float64(i)), append(ys, pt.Value), append(ws, float64(w.Calls))
				}
			}
		}
	}
	if len(xs) < 3 {
		return nil, false
	}
	slope, _, a := fitLine(xs, ys, ws)
	at := func(i float64) plotter.XY {
		return plotter.XY{X: unix(d.Weeks[0].Start.Add(time.Duration((i + 0.5) * float64(week)))), Y: 100 * (a + slope*i)}
	}
	return plotter.XYs{at(0), at(float64(len(d.Weeks) - 1))}, true
}

// costChart draws the weekly cost and its projection over the growth
// horizon: exp of the least-squares line through the log of the weekly
// cost, as the decision fits it, with the growth threshold's level.
func costChart(d Decision, cfg DecisionConfig) (*chart, error) {
	cfg = cfg.WithDefaults()
	var xs, ys []float64
	var costs plotter.XYs
	for i, w := range d.Weeks {
		if w.CostUSD > 0 {
			xs, ys = append(xs, float64(i)), append(ys, math.Log(w.CostUSD))
			costs = append(costs, plotter.XY{X: unix(w.Start.Add(week / 2)), Y: w.CostUSD})
		}
	}
	if len(costs) == 0 {
		return nil, nil
	}
	title := "Approach1's cost per week and its projection"
	p := newPlot(title, "week starting", "USD per week")
	p.Y.Min = 0
	from := d.Weeks[0].Start
	horizon := cfg.GrowthHorizon.Hours() / (7 * 24)
	last := float64(len(d.Weeks) - 1)
	to := d.Weeks[len(d.Weeks)-1].Start.Add(week)
	leg := sideLegend()
	l, err := lineOf(costs, colorA1)
	if err != nil {
		return nil, err
	}
	pts, err := plotter.NewScatter(costs)
	if err != nil {
		return nil, err
	}
	pts.Color, pts.Shape = colorA1, draw.CircleGlyph{}
	p.Add(l, pts)
	leg.Add("cost, week", l, pts)
	caption := fmt.Sprintf("What approach1 cost each whole week (%s).", costSources(d.Weeks))
	if len(xs) >= 3 {
		slope, _, a := fitLine(xs, ys, nil)
		weekAt := func(i float64) time.Time { return from.Add(time.Duration((i + 0.5) * float64(week))) }
		var proj plotter.XYs
		for i := 0.0; i <= last+horizon; i += 0.5 {
			proj = append(proj, plotter.XY{X: unix(weekAt(i)), Y: math.Exp(a + slope*i)})
		}
		to = weekAt(last + horizon).Add(week / 2)
		pl, err := lineOf(proj, colorMuted, vg.Points(4), vg.Points(3))
		if err != nil {
			return nil, err
		}
		level := cfg.MaxCostGrowth * math.Exp(a+slope*last)
		th, err := lineOf(plotter.XYs{{X: unix(weekAt(last)), Y: level}, {X: unix(to), Y: level}}, colorThreshold, vg.Points(6), vg.Points(3))
		if err != nil {
			return nil, err
		}
		p.Add(pl, th)
		leg.Add("projection", pl)
		leg.Add(fmt.Sprintf("%.1f× latest fit", cfg.MaxCostGrowth), th)
		growth := math.Exp(slope * horizon)
		caption += fmt.Sprintf(" The dashed curve is the exponential of the least-squares line through the logarithm of the weekly cost, carried %s past the latest week: it changes %+.1f%% a week and reaches %.2f× the latest fitted cost (%s) by then; %.1f× (the red line) calls for migration, so the trajectory %s.",
			weeksOf(cfg.GrowthHorizon), 100*(math.Exp(slope)-1), growth, usdPlain(math.Exp(a+slope*last)), cfg.MaxCostGrowth,
			map[bool]string{true: "calls for migration", false: "does not call for migration"}[growth >= cfg.MaxCostGrowth])
	} else {
		caption += " Fewer than 3 weeks had a cost: no projection."
	}
	timeAxis(p, from, to)
	p.Y.Max *= 1.05
	svg, err := render(p, leg)
	if err != nil {
		return nil, err
	}
	return &chart{Title: title, Caption: caption, SVG: svg}, nil
}

func usdPlain(v float64) string { return fmt.Sprintf("$%.2f", v) }

func costSources(weeks []Week) string {
	n := 0
	for _, w := range weeks {
		if w.CostSource == "sandboxes" {
			n++
		}
	}
	switch n {
	case 0:
		return "the calls' sandbox commands: no sandbox ended in the period"
	case len(weeks):
		return "what the sandboxes that ended cost over their lives"
	}
	return fmt.Sprintf("the sandboxes' lifetime cost in %d weeks, the calls' commands in the other %d", n, len(weeks)-n)
}

// latencyChart draws the cumulative distributions of both backends'
// latencies from their sketches, on a logarithmic axis.
func latencyChart(op backends.Op, sk [2]*Sketch) (*chart, error) {
	if sk[0].Count() == 0 && sk[1].Count() == 0 {
		return nil, nil
	}
	title := fmt.Sprintf("%s: latency distribution of both backends", op)
	p := newPlot(title, "latency (ms, log scale)", "share of calls at or below")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	leg := sideLegend()
	lo, hi := math.Inf(1), math.Inf(-1)
	var parts []string
	for i, name := range []backends.Name{backends.Approach1, backends.Approach2} {
		k := sk[i]
		n := k.Count()
		if n == 0 {
			parts = append(parts, fmt.Sprintf("%s had no calls", name))
			continue
		}
		var xys plotter.XYs
		var cum int64
		k.Buckets(func(v float64, c int64) {
			cum += c
			v = max(v, minLatency)
			xys = append(xys, plotter.XY{X: v, Y: float64(cum) / float64(n)})
			lo, hi = min(lo, v), max(hi, v)
		})
		l, err := lineOf(xys, backendColor(name))
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PostStep
		p.Add(l)
		leg.Add(fmt.Sprintf("%s (%d)", name, n), l)
		parts = append(parts, fmt.Sprintf("%s %d calls, P50 %s, P95 %s, P99 %s", name, n, msec(k.Quantile(0.5)), msec(k.Quantile(0.95)), msec(k.Quantile(0.99))))
	}
	// Some room either side, and never a zero-width log axis.
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	for _, q := range []float64{0.5, 0.95, 0.99} {
		ql, err := lineOf(plotter.XYs{{X: p.X.Min, Y: q}, {X: p.X.Max, Y: q}}, colorMuted, vg.Points(1), vg.Points(3))
		if err != nil {
			return nil, err
		}
		ql.Width = vg.Points(0.75)
		p.Add(ql)
	}
	caption := fmt.Sprintf("Cumulative share of calls at or below each latency, from the ledger's quantile sketches (bins within %.0f%% of the true value), for the calls the judge compared (the judged stage, or the whole period when no stage is judged); dotted lines mark P50, P95 and P99. %s.",
		100*SketchAccuracy, strings.Join(parts, "; "))
	svg, err := render(p, leg)
	if err != nil {
		return nil, err
	}
	return &chart{Title: title, Caption: caption, SVG: svg}, nil
}

// minLatency is where the log axis starts: the sketch's zero bin draws
// there.
const minLatency = 0.01

// errorRateChart draws each backend's daily error rate with its
// confidence band.
func errorRateChart(op backends.Op, daily map[backends.Name][]DayCount, alpha float64) (*chart, error) {
	names := []backends.Name{backends.Approach1, backends.Approach2}
	var from, to time.Time
	for _, name := range names {
		for _, dc := range daily[name] {
			if dc.Calls == 0 {
				continue
			}
			if from.IsZero() || dc.Day.Before(from) {
				from = dc.Day
			}
			to = later(to, dc.Day.Add(24*time.Hour))
		}
	}
	if from.IsZero() {
		return nil, nil
	}
	title := fmt.Sprintf("%s: daily error rate with its confidence band", op)
	p := newPlot(title, "day (UTC)", "error rate (%)")
	timeAxis(p, from, to)
	p.Y.Min = 0
	leg := sideLegend()
	var parts []string
	var bands, lines []plot.Plotter
	maxRate, maxUpper := 0.0, 0.0
	for _, name := range names {
		var rate, upper, lower plotter.XYs
		var calls, fails int64
		for _, dc := range daily[name] {
			if dc.Calls == 0 {
				continue
			}
			x := unix(dc.Day.Add(12 * time.Hour))
			lo, hi := RateBounds(dc.Failures, dc.Calls, alpha)
			rate = append(rate, plotter.XY{X: x, Y: 100 * float64(dc.Failures) / float64(dc.Calls)})
			upper = append(upper, plotter.XY{X: x, Y: 100 * hi})
			maxRate, maxUpper = max(maxRate, rate[len(rate)-1].Y), max(maxUpper, 100*hi)
			lower = append(lower, plotter.XY{X: x, Y: 100 * lo})
			calls, fails = calls+dc.Calls, fails+dc.Failures
		}
		if len(rate) == 0 {
			continue
		}
		c := backendColor(name)
		slices.Reverse(lower)
		band, err := plotter.NewPolygon(append(slices.Clone(upper), lower...))
		if err != nil {
			return nil, err
		}
		band.Color, band.LineStyle.Width = translucent(c, 0x40), 0
		l, err := lineOf(rate, c)
		if err != nil {
			return nil, err
		}
		pts, err := plotter.NewScatter(rate)
		if err != nil {
			return nil, err
		}
		pts.Color, pts.Shape, pts.Radius = c, draw.CircleGlyph{}, vg.Points(2)
		bands, lines = append(bands, band), append(lines, l, pts)
		leg.Add(string(name), l, pts)
		leg.Add(string(name)+" band", band)
		parts = append(parts, fmt.Sprintf("%s %d failures in %d calls over %d days", name, fails, calls, len(rate)))
	}
	// The bands first, so that no band hides a line. A day of few calls
	// has a band up to tens of per cent that would flatten every rate:
	// the axis stops at four times the highest daily rate (at least 5 %)
	// and cuts such bands off.
	p.Add(bands...)
	p.Add(lines...)
	top := min(maxUpper, max(4*maxRate, 5))
	p.Y.Max = top
	clipped := ""
	if top < maxUpper {
		clipped = fmt.Sprintf(" The axis stops at %.1f%%: bands of days with few calls, up to %.1f%%, are cut off there.", top, maxUpper)
	}
	caption := fmt.Sprintf("Failures (backend errors and fallbacks; client mistakes count against nobody) over calls routed to each backend, per day. The bands are the anytime-valid confidence sequence (canary.RateBounds) of each day's rate at the judge's per-backend miscoverage for an error-rate interval, α = %.4g (the false-alarm rate %s split over %d rollback tests and the two backends); each day's band holds on its own, not all days at once. %s.%s",
		alpha, pct(alpha*float64(rollbackTests)*2), rollbackTests, strings.Join(parts, "; "), clipped)
	svg, err := render(p, leg)
	if err != nil {
		return nil, err
	}
	return &chart{Title: title, Caption: caption, SVG: svg}, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// timelineChart draws each operation's route over the period as steps —
// from its calls' stages and the change log's route changes — with the
// automatic rollbacks, kill switches, releases and drills marked.
func timelineChart(r *Report) (*chart, error) {
	type step struct {
		at    time.Time
		stage int
	}
	var ops []backends.Op
	routes := map[backends.Op][]step{}
	for _, o := range r.Operations {
		var steps []step
		for _, s := range r.Charts.Stages[o.Op] {
			if s.Stage >= 0 {
				steps = append(steps, step{s.From, s.Stage})
			}
		}
		for _, e := range r.Timeline {
			if e.Op == o.Op && e.Stage >= 0 && (e.Kind == EventStage || e.Kind == EventRollback) {
				steps = append(steps, step{e.At, e.Stage})
			}
		}
		if len(steps) == 0 {
			continue
		}
		slices.SortStableFunc(steps, func(a, b step) int { return a.at.Compare(b.at) })
		ops = append(ops, o.Op)
		routes[o.Op] = steps
	}
	if len(ops) == 0 && len(r.Timeline) == 0 {
		return nil, nil
	}
	title := "Stage timeline: each operation's route to approach2"
	p := newPlot(title, "day (UTC)", "route to approach2 (%)")
	timeAxis(p, r.Since, r.Until)
	p.Y.Min, p.Y.Max = -8, 116
	p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 25, Label: "25"}, {Value: 50, Label: "50"}, {Value: 75, Label: "75"}, {Value: 100, Label: "100"}})
	leg := sideLegend()
	// Operations on the same route would hide each other: each line is
	// offset by up to a point and a half.
	offset := func(i int) float64 {
		if len(ops) < 2 {
			return 0
		}
		return 3 * (float64(i)/float64(len(ops)-1) - 0.5)
	}
	routeAt := func(op backends.Op, t time.Time) float64 {
		v := 0.0
		for _, s := range routes[op] {
			if !s.at.Before(t) {
				break
			}
			v = float64(s.stage)
		}
		return v
	}
	for i, op := range ops {
		var xys plotter.XYs
		for _, s := range routes[op] {
			if s.at.Before(r.Since) {
				s.at = r.Since
			}
			xys = append(xys, plotter.XY{X: unix(s.at), Y: float64(s.stage) + offset(i)})
		}
		xys = append(xys, plotter.XY{X: unix(r.Until), Y: xys[len(xys)-1].Y})
		l, err := lineOf(xys, opColors[i%len(opColors)])
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PostStep
		if (i/len(opColors))%2 == 1 { // the colours come round again: dashed
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(2)}
		}
		p.Add(l)
		leg.Add(string(op), l)
	}
	// The markers: rollbacks on the operation's line just before they
	// struck; whole-gateway events along the top.
	marks := map[EventKind]plotter.XYs{}
	counts := map[EventKind]int{}
	for _, e := range r.Timeline {
		counts[e.Kind]++
		x := unix(e.At)
		switch {
		case e.Kind == EventRollback:
			y := 100.0
			if i := slices.Index(ops, e.Op); i >= 0 {
				y = routeAt(e.Op, e.At) + offset(i)
			}
			marks[e.Kind] = append(marks[e.Kind], plotter.XY{X: x, Y: y})
		case e.Kind == EventStage && e.Op != "":
			y := float64(e.Stage)
			if i := slices.Index(ops, e.Op); i >= 0 {
				y += offset(i)
			}
			marks[e.Kind] = append(marks[e.Kind], plotter.XY{X: x, Y: y})
		default:
			st := markStyle(e.Kind)
			marks[e.Kind] = append(marks[e.Kind], plotter.XY{X: x, Y: st.top})
			vl, err := lineOf(plotter.XYs{{X: x, Y: -8}, {X: x, Y: st.top}}, st.color, vg.Points(2), vg.Points(2))
			if err != nil {
				return nil, err
			}
			vl.Width = vg.Points(0.75)
			p.Add(vl)
		}
	}
	for _, kind := range []EventKind{EventStage, EventRollback, EventKill, EventRelease, EventDrill, EventOther} {
		if len(marks[kind]) == 0 {
			continue
		}
		st := markStyle(kind)
		sc, err := plotter.NewScatter(marks[kind])
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = st.color, st.glyph, st.radius
		p.Add(sc)
		leg.Add(st.label, sc)
	}
	var parts []string
	for _, kind := range []EventKind{EventStage, EventRollback, EventKill, EventRelease, EventDrill, EventOther} {
		if counts[kind] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[kind], markStyle(kind).label))
		}
	}
	events := "no events from the change log or the ledger"
	if len(parts) > 0 {
		events = strings.Join(parts, ", ")
	}
	caption := fmt.Sprintf("Each operation's share of workspaces routed to approach2, as a step line from the stages its calls recorded (hours by their most common stage) and the change log's route changes; lines are offset by up to 1.5 points so that operations on the same route stay visible. Markers: operator route changes (rings) and automatic rollbacks (red dots) on the operation's line; kill switches, releases and drills, which concern every operation, along the top with a dotted vertical line. In the period: %s. The list below gives every event.", events)
	svg, err := render(p, leg)
	if err != nil {
		return nil, err
	}
	return &chart{Title: title, Caption: caption, SVG: svg}, nil
}

// mark is how the timeline shows a kind of event; top is the height of
// the marker of an event that concerns every operation (kill and release
// apart, so that a short kill stays visible).
type mark struct {
	color  color.Color
	glyph  draw.GlyphDrawer
	radius vg.Length
	label  string
	top    float64
}

func markStyle(k EventKind) mark {
	switch k {
	case EventStage:
		return mark{color.Black, draw.RingGlyph{}, vg.Points(4), "route change", 0}
	case EventRollback:
		return mark{colorThreshold, draw.CircleGlyph{}, vg.Points(5), "rollback", 0}
	case EventKill:
		return mark{color.Black, draw.BoxGlyph{}, vg.Points(4), "kill switch", 112}
	case EventRelease:
		return mark{color.NRGBA{G: 0x80, A: 0xFF}, draw.PyramidGlyph{}, vg.Points(4), "release", 105}
	case EventDrill:
		return mark{color.NRGBA{R: 0x80, B: 0xA0, A: 0xFF}, draw.TriangleGlyph{}, vg.Points(4), "drill", 112}
	}
	return mark{colorMuted, draw.CircleGlyph{}, vg.Points(3), "other", 105}
}

var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{.Policy}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: "Liberation Sans", "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 64em; padding: 0 1em; color: #222; line-height: 1.4; }
h1, h2, h3 { line-height: 1.2; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; white-space: nowrap; }
.yes { color: #a00; font-weight: bold; }
.verdict { font-weight: bold; }
.verdict-rollback, .verdict-migrate { color: #a00; }
.verdict-advance, .verdict-complete, .verdict-stay { color: #060; }
.verdict-hold { color: #a60; }
figure { margin: 1.5em 0; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
figcaption strong { display: block; color: #222; font-size: 1.05em; margin-bottom: 0.2em; }
svg.chart { display: block; max-width: 100%; height: auto; margin-top: 0.5em; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; white-space: pre-wrap; }
</style>
</head>
<body>
<header>
<h1>gitgate canary report</h1>
<p>{{.Period}}. Ledger: {{.Source}}.</p>
</header>
<main>
<section id="decision">
<h2>Decision: <span class="verdict verdict-{{.VerdictClass}}">{{.Verdict}}</span></h2>
<ul>{{range .Reasons}}
<li>{{.}}</li>{{end}}
</ul>
<p>Signals from approach1's own calls, per whole week ({{.Weeks}} weeks):</p>
<table>
<thead><tr><th scope="col">signal</th><th scope="col">threshold</th><th scope="col">latest</th><th scope="col">weeks over</th><th scope="col">calls for migration</th></tr></thead>
<tbody>{{range .Signals}}
<tr><td>{{.Name}}</td><td class="num">{{.Threshold}}</td><td class="num">{{.Latest}}</td><td>{{.Over}}</td><td>{{if .Exceeded}}<span class="yes">yes</span>{{else}}no{{end}}</td></tr>{{end}}
</tbody>
</table>
{{range .SignalCharts}}{{template "chart" .}}{{end}}
</section>
<section id="operations">
<h2>Operations</h2>
<table>
<thead><tr><th scope="col">op</th><th scope="col">stage</th><th scope="col">verdict</th><th scope="col">calls a1 / a2</th><th scope="col">errors a1 / a2</th><th scope="col">P95 a1 / a2</th><th scope="col">mismatches</th><th scope="col">cost/op a1 / a2</th></tr></thead>
<tbody>{{range .Overview}}
<tr><td>{{.Op}}</td><td class="num">{{.Stage}}</td><td class="verdict verdict-{{.Verdict}}">{{.Verdict}}</td><td class="num">{{.Calls}}</td><td class="num">{{.Errors}}</td><td class="num">{{.P95}}</td><td class="num">{{.Mismatches}}</td><td class="num">{{.Cost}}</td></tr>{{end}}
</tbody>
</table>
{{if .DrillNote}}<p id="drill-calls">{{.DrillNote}}</p>{{end}}
{{range .Ops}}
<section class="operation">
<h3>{{.Op}}: <span class="verdict verdict-{{.Verdict}}">{{.Verdict}}</span></h3>
<p>{{.Stage}}{{if .Baseline}} Baseline: {{.Baseline}}.{{end}}</p>
<ul>{{range .Reasons}}
<li>{{.}}</li>{{end}}
</ul>
<table>
<thead><tr><th scope="col">backend</th><th scope="col">calls</th><th scope="col">failures</th><th scope="col">fell back</th><th scope="col">error rate (interval)</th><th scope="col">P50</th><th scope="col">P95</th><th scope="col">P99</th><th scope="col">cost/op</th></tr></thead>
<tbody>{{range .Backends}}
<tr><td>{{.Name}}</td><td class="num">{{.Calls}}</td><td class="num">{{.Failures}}</td><td class="num">{{.FellBack}}</td><td class="num">{{.ErrorRate}}</td><td class="num">{{.P50}}</td><td class="num">{{.P95}}</td><td class="num">{{.P99}}</td><td class="num">{{.Cost}}</td></tr>{{end}}
</tbody>
</table>
<p>{{.Shadow}}</p>
{{range .Examples}}<pre>{{.}}</pre>
{{end}}
<table>
<thead><tr><th scope="col">test</th><th scope="col">approach1</th><th scope="col">approach2</th><th scope="col">bounds a1</th><th scope="col">bounds a2</th><th scope="col">floor</th><th scope="col">result</th></tr></thead>
<tbody>{{range .Tests}}
<tr title="{{.Why}}"><td>{{.Metric}}</td><td class="num">{{.A1}}</td><td class="num">{{.A2}}</td><td class="num">{{.A1Bounds}}</td><td class="num">{{.A2Bounds}}</td><td class="num">{{.Floor}}</td><td>{{.Result}}</td></tr>{{end}}
</tbody>
</table>
{{range .Charts}}{{template "chart" .}}{{end}}
</section>
{{end}}
</section>
<section id="timeline">
<h2>Timeline</h2>
{{range .TimelineCharts}}{{template "chart" .}}{{end}}
{{if .Timeline}}<ul>{{range .Timeline}}
<li><time>{{.At}}</time> {{.Op}} ({{.Kind}}): {{.What}}</li>{{end}}
</ul>{{else}}<p>No stage changes, rollbacks, kill switches or drills in the period.</p>{{end}}
</section>
<section id="method">
<h2>How this was judged</h2>
<p>{{.Method}}</p>
</section>
</main>
</body>
</html>
{{define "chart"}}<figure class="chart-figure" id="{{.ID}}">
<figcaption><strong id="{{.ID}}-title">{{.Title}}</strong> <span id="{{.ID}}-caption">{{.Caption}}</span></figcaption>
{{.SVG}}
</figure>
{{end}}`))
