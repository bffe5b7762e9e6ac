package canary

import (
	"math"
)

// Anytime-valid confidence sequences.
//
// Every bound the judge uses comes from one test martingale: Robbins'
// beta-binomial mixture. For n Bernoulli observations with s successes and
// a candidate success probability p,
//
//	M(p) = B(1+s, 1+n-s) / (p^s (1-p)^(n-s))
//
// (a uniform prior over the alternative; B is the beta function) is a
// non-negative martingale with mean 1 when p is the true probability, so
// by Ville's inequality the chance that it ever reaches 1/α, at any of the
// infinitely many times it may be looked at, is at most α. The set
// {p : M(p) < 1/α} is therefore a confidence sequence: it holds the true p
// at every n at once with probability 1-α, however often the report, the
// advance command and the automatic rollback look and whenever they stop.
//
// Rates (errors, shadow mismatches) use it directly. A quantile q of a
// latency distribution uses it through the count of calls at or below the
// true quantile, which is Bernoulli(q): with probability 1-α that count
// stays, at every n, within the acceptance interval [lo, hi] of M(q), so
// the true quantile lies between the lo-th smallest observation and the
// (hi+1)-th (Howard and Ramdas, "Sequential estimation of quantiles with
// applications to A/B-testing and best-arm identification", Bernoulli
// 2022, for a fixed quantile).

// logMixture is log M(p) for s successes in n trials.
func logMixture(s, n int64, p float64) float64 {
	if p <= 0 {
		if s > 0 {
			return math.Inf(1)
		}
		p = 0
	}
	if p >= 1 {
		if s < n {
			return math.Inf(1)
		}
		p = 1
	}
	lb := lbeta(1+float64(s), 1+float64(n-s))
	ll := 0.0
	if s > 0 {
		ll += float64(s) * math.Log(p)
	}
	if n-s > 0 {
		ll += float64(n-s) * math.Log1p(-p)
	}
	return lb - ll
}

func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// RateBounds is the confidence sequence for a Bernoulli probability after
// s successes in n trials, at miscoverage alpha: [lo, hi]. With n = 0 it
// is [0, 1].
func RateBounds(s, n int64, alpha float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	limit := math.Log(1 / alpha)
	phat := float64(s) / float64(n)
	in := func(p float64) bool { return logMixture(s, n, p) < limit }
	lo, hi = 0, 1
	if !in(0) {
		lo = bisect(0, phat, func(p float64) bool { return in(p) })
	}
	if !in(1) {
		hi = bisect(phat, 1, func(p float64) bool { return !in(p) })
	}
	return lo, hi
}

// bisect returns the boundary in [a, b] where pred turns from false to
// true (pred(a) false, pred(b) true), to 1e-9.
func bisect(a, b float64, pred func(float64) bool) float64 {
	for range 60 {
		m := (a + b) / 2
		if pred(m) {
			b = m
		} else {
			a = m
		}
		if b-a < 1e-9 {
			break
		}
	}
	return (a + b) / 2
}

// QuantileRanks is the acceptance interval [lo, hi] of the count of n
// observations at or below the true q-quantile, at miscoverage alpha: the
// quantile lies between the lo-th smallest observation (lo = 0: no lower
// bound) and the (hi+1)-th (hi = n: no upper bound).
func QuantileRanks(q float64, n int64, alpha float64) (lo, hi int64) {
	if n <= 0 {
		return 0, 0
	}
	limit := math.Log(1 / alpha)
	in := func(k int64) bool { return logMixture(k, n, q) < limit }
	mid := min(max(int64(math.Round(q*float64(n))), 0), n)
	if !in(mid) { // cannot happen for alpha < 1: the mixture is below 1 near n·q
		return 0, n
	}
	// lo: the smallest k ≤ mid in the interval (log M falls as k nears n·q).
	a, b := int64(-1), mid
	for b-a > 1 {
		m := (a + b) / 2
		if in(m) {
			b = m
		} else {
			a = m
		}
	}
	lo = b
	a, b = mid, n+1
	for b-a > 1 {
		m := (a + b) / 2
		if in(m) {
			a = m
		} else {
			b = m
		}
	}
	return lo, a
}

// QuantileBounds is the confidence sequence for the q-quantile of the
// values summarised in k, at miscoverage alpha, widened by the sketch's
// relative accuracy: [lo, hi], hi = +Inf while too few values are known.
func QuantileBounds(k *Sketch, q, alpha float64) (lo, hi float64) {
	n := k.Count()
	if n == 0 {
		return 0, math.Inf(1)
	}
	rlo, rhi := QuantileRanks(q, n, alpha)
	lo, hi = 0, math.Inf(1)
	if rlo >= 1 {
		lo = k.Rank(rlo) * (1 - SketchAccuracy)
	}
	if rhi+1 <= n {
		hi = k.Rank(rhi+1) * (1 + SketchAccuracy)
	}
	return lo, hi
}
