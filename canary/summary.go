package canary

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// SketchAccuracy is the relative accuracy of every quantile the ledger's
// summaries give: a quantile read from a Sketch is within 1 % of the true
// value at that rank. The judge widens its bounds by it.
const SketchAccuracy = 0.01

// Sketch is a mergeable quantile sketch (DDSketch, relative accuracy
// SketchAccuracy) of non-negative values: call durations in milliseconds,
// queueing waits in milliseconds. Its JSON form is the sketch's own
// binary encoding in base64, so summaries can be stored and merged later
// (an hour's summary into a week's).
type Sketch struct{ s *ddsketch.DDSketch }

// NewSketch returns an empty sketch.
func NewSketch() *Sketch {
	s, err := ddsketch.LogUnboundedDenseDDSketch(SketchAccuracy)
	if err != nil {
		panic(err) // only for an accuracy outside (0, 1)
	}
	return &Sketch{s: s}
}

// Add records v (negative values count as 0).
func (k *Sketch) Add(v float64) {
	if v < 0 || math.IsNaN(v) {
		v = 0
	}
	_ = k.s.Add(v) // fails only for values the mapping cannot index (±Inf)
}

// Merge adds o's values to k.
func (k *Sketch) Merge(o *Sketch) {
	if o == nil || o.s == nil {
		return
	}
	_ = k.s.MergeWith(o.s) // fails only for sketches of different accuracies
}

// Count is the number of values recorded.
func (k *Sketch) Count() int64 {
	if k == nil || k.s == nil {
		return 0
	}
	return int64(math.Round(k.s.GetCount()))
}

// Quantile returns the value at quantile q (0..1), 0 when empty.
func (k *Sketch) Quantile(q float64) float64 {
	if k.Count() == 0 {
		return 0
	}
	v, err := k.s.GetValueAtQuantile(min(max(q, 0), 1))
	if err != nil {
		return 0
	}
	return v
}

// Rank returns the value of the i-th smallest of the n recorded values
// (1 ≤ i ≤ n), to the sketch's accuracy.
func (k *Sketch) Rank(i int64) float64 {
	n := k.Count()
	if n <= 1 {
		return k.Quantile(0)
	}
	return k.Quantile(float64(min(max(i, 1), n)-1) / float64(n-1))
}

// Buckets calls fn for each of the sketch's bins in ascending order: a
// representative value and how many values fell there (for histograms).
func (k *Sketch) Buckets(fn func(value float64, count int64)) {
	if k.Count() == 0 {
		return
	}
	type bin struct {
		v float64
		c int64
	}
	var bins []bin
	k.s.ForEach(func(v, c float64) bool {
		bins = append(bins, bin{v, int64(math.Round(c))})
		return false
	})
	slices.SortFunc(bins, func(a, b bin) int { return cmpFloat(a.v, b.v) })
	for _, b := range bins {
		fn(b.v, b.c)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MarshalJSON writes the sketch's binary encoding in base64.
func (k *Sketch) MarshalJSON() ([]byte, error) {
	var b []byte
	if k != nil && k.s != nil {
		k.s.Encode(&b, false)
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (k *Sketch) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("sketch: %w", err)
	}
	return k.decode(raw)
}

// Encode returns the sketch's binary encoding (for a PostgreSQL bytea).
func (k *Sketch) Encode() []byte {
	var b []byte
	k.s.Encode(&b, false)
	return b
}

// DecodeSketch reads what Encode wrote.
func DecodeSketch(raw []byte) (*Sketch, error) {
	k := &Sketch{}
	return k, k.decode(raw)
}

func (k *Sketch) decode(raw []byte) error {
	if len(raw) == 0 {
		*k = *NewSketch()
		return nil
	}
	s, err := ddsketch.DecodeDDSketch(raw, store.DenseStoreConstructor, nil)
	if err != nil {
		return fmt.Errorf("sketch: %w", err)
	}
	k.s = s
	return nil
}

// Calls summarises one backend's calls for one operation over a period,
// as the judge and the decision framework need them. Summaries merge, so
// an hour's can be kept instead of its calls and added up later.
type Calls struct {
	N        int64 `json:"calls"`
	Failures int64 `json:"failures"` // Entry.Failed: backend failures and fallbacks
	FellBack int64 `json:"fell_back"`
	// Latency holds the calls' durations in milliseconds.
	Latency *Sketch `json:"latency_ms"`
	CostUSD float64 `json:"cost_usd"` // summed over the calls
	// MaxInFlight is the most calls a gateway had in flight when one of
	// these started.
	MaxInFlight int `json:"max_in_flight"`
	// Wait holds how long the calls queued, in milliseconds.
	Wait *Sketch `json:"wait_ms"`
}

// NewCalls returns an empty summary.
func NewCalls() *Calls { return &Calls{Latency: NewSketch(), Wait: NewSketch()} }

// Add counts a call.
func (c *Calls) Add(e Entry) {
	c.init()
	c.N++
	if e.Failed() {
		c.Failures++
	}
	if e.FellBack {
		c.FellBack++
	}
	c.Latency.Add(ms(e.Duration))
	c.Wait.Add(ms(e.Wait))
	c.CostUSD += e.CostUSD
	c.MaxInFlight = max(c.MaxInFlight, e.InFlight)
}

// Merge adds o to c.
func (c *Calls) Merge(o *Calls) {
	if o == nil {
		return
	}
	c.init()
	c.N += o.N
	c.Failures += o.Failures
	c.FellBack += o.FellBack
	c.Latency.Merge(o.Latency)
	c.Wait.Merge(o.Wait)
	c.CostUSD += o.CostUSD
	c.MaxInFlight = max(c.MaxInFlight, o.MaxInFlight)
}

func (c *Calls) init() {
	if c.Latency == nil {
		c.Latency = NewSketch()
	}
	if c.Wait == nil {
		c.Wait = NewSketch()
	}
}

// ErrorRate is Failures/N, 0 without calls.
func (c *Calls) ErrorRate() float64 {
	if c == nil || c.N == 0 {
		return 0
	}
	return float64(c.Failures) / float64(c.N)
}

// CostPerCall is CostUSD/N, 0 without calls.
func (c *Calls) CostPerCall() float64 {
	if c == nil || c.N == 0 {
		return 0
	}
	return c.CostUSD / float64(c.N)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// maxExamples is how many mismatch diffs a Shadows keeps as evidence.
const maxExamples = 5

// Shadows summarises shadow comparisons of one operation over a period.
type Shadows struct {
	Match      int64 `json:"match"`
	Mismatch   int64 `json:"mismatch"`
	Stale      int64 `json:"stale"`
	Unfinished int64 `json:"unfinished"` // the shadow failed or ran out of time
	Skipped    int64 `json:"skipped"`
	// Examples are the first mismatches' diffs (redacted when recorded),
	// at most five.
	Examples []string `json:"examples,omitempty"`
}

// Add counts a comparison.
func (s *Shadows) Add(e Entry) {
	switch e.Outcome {
	case OutcomeMatch:
		s.Match++
	case OutcomeMismatch:
		s.Mismatch++
		if len(s.Examples) < maxExamples && e.Detail != "" {
			s.Examples = append(s.Examples, e.Detail)
		}
	case OutcomeStale:
		s.Stale++
	case OutcomeShadowError, OutcomeShadowTimeout:
		s.Unfinished++
	case OutcomeSkipped:
		s.Skipped++
	}
}

// Merge adds o to s.
func (s *Shadows) Merge(o Shadows) {
	s.Match += o.Match
	s.Mismatch += o.Mismatch
	s.Stale += o.Stale
	s.Unfinished += o.Unfinished
	s.Skipped += o.Skipped
	for _, ex := range o.Examples {
		if len(s.Examples) < maxExamples {
			s.Examples = append(s.Examples, ex)
		}
	}
}

// Compared is how many comparisons compared something (matches and
// mismatches).
func (s Shadows) Compared() int64 { return s.Match + s.Mismatch }

// MismatchRate is Mismatch/Compared, 0 without comparisons.
func (s Shadows) MismatchRate() float64 {
	if s.Compared() == 0 {
		return 0
	}
	return float64(s.Mismatch) / float64(s.Compared())
}
