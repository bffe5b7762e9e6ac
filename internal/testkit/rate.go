package testkit

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ParallelRate runs n calls of fn on workers goroutines, each call told
// which worker (0 to workers-1) makes it, and returns calls per second.
func ParallelRate(n, workers int, fn func(worker int)) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				fn(w)
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// Alternate compares two rates measured moments apart, since the machine's
// speed drifts (other tenants, frequency): it splits n calls of each of a
// and b into rounds of n/rounds calls (at least minPerRound), run in the
// order A B B A A B ..., and returns the median rate of each and the median
// of the rounds' ratios b/a. a and b make the calls they are given and
// return their rate.
func Alternate(n, rounds, minPerRound int, a, b func(n int) float64) (rateA, rateB, ratio float64) {
	q := max(n/rounds, minPerRound)
	var ra, rb, ratios []float64
	for i := range rounds {
		var x, y float64
		if i%2 == 0 {
			x = a(q)
			y = b(q)
		} else {
			y = b(q)
			x = a(q)
		}
		ra, rb, ratios = append(ra, x), append(rb, y), append(ratios, y/x)
	}
	return Median(ra), Median(rb), Median(ratios)
}

// Median is the 50th Percentile of v.
func Median[T cmp.Ordered](v []T) T { return Percentile(v, 50) }

// Percentile is the pct-th percentile of v (the element at len(v)*pct/100
// in sorted order); v is not modified.
func Percentile[T cmp.Ordered](v []T, pct int) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)*pct/100]
}
