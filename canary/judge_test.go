package canary

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// drawCalls draws n calls: each fails with probability fail, and lasts a
// log-normal time of median med and shape sigma, plus shift.
func drawCalls(r *rand.Rand, n int, fail float64, med time.Duration, sigma float64, shift time.Duration) *Calls {
	c := NewCalls()
	for range n {
		c.Add(drawCall(r, fail, med, sigma, shift))
	}
	return c
}

func drawCall(r *rand.Rand, fail float64, med time.Duration, sigma float64, shift time.Duration) Entry {
	d := time.Duration(float64(med)*math.Exp(sigma*r.NormFloat64())) + shift
	e := Entry{Kind: KindCall, Duration: d, CostUSD: d.Seconds() * 0.00002}
	if r.Float64() < fail {
		e.Category = "unavailable"
	}
	return e
}

// The bounds hold at every look: over many runs of 2,000 observations,
// looked at after each one, the share of runs in which a bound ever
// excluded the truth stays within alpha.
func TestConfidenceSequencesHoldAtEveryLook(t *testing.T) {
	const runs, n, alpha = 300, 2000, 0.05
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range []float64{0.01, 0.2} {
		missed := 0
		for range runs {
			var s int64
			for i := int64(1); i <= n; i++ {
				if r.Float64() < p {
					s++
				}
				if i%10 != 0 {
					continue
				}
				if lo, hi := RateBounds(s, i, alpha); p < lo || p > hi {
					missed++
					break
				}
			}
		}
		if rate := float64(missed) / runs; rate > alpha {
			t.Errorf("rate %v: the bounds missed it in %.1f%% of runs, above %.0f%%", p, 100*rate, 100*alpha)
		} else {
			t.Logf("rate %v: missed in %.1f%% of runs (alpha %.0f%%)", p, 100*rate, 100*alpha)
		}
	}
}

func TestJudgeScenarios(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cfg := JudgeConfig{}
	// 10 % stage: nine Approach 1 calls for each Approach 2 call.
	push := func(fail2 float64, n2 int) Judgement {
		return Judge(Input{Op: "push", Stage: 10, A1: drawCalls(r, 9*n2, 0.01, 800*time.Millisecond, 0.4, 0), A2: drawCalls(r, n2, fail2, 800*time.Millisecond, 0.4, 0)}, cfg)
	}
	for _, n2 := range []int{100, 200, 300, 500} {
		j := push(0.2, n2)
		t.Logf("push 20%% failures, %d approach2 calls: %s %v", n2, j.Verdict, j.Reasons)
	}
	j := Judge(Input{Op: "clone", Stage: 10, A1: drawCalls(r, 2700, 0.01, time.Second, 0.5, 0), A2: drawCalls(r, 300, 0.01, time.Second, 0.5, 2*time.Second)}, cfg)
	t.Logf("clone +2s: %s %v", j.Verdict, j.Reasons)
	j = Judge(Input{Op: "status", Stage: 10, A1: drawCalls(r, 9000, 0.001, 30*time.Millisecond, 0.3, 0), A2: drawCalls(r, 1000, 0.001, 30*time.Millisecond, 0.3, 10*time.Millisecond)}, cfg)
	t.Logf("status +10ms: %s %v further %d", j.Verdict, j.Reasons, j.FurtherCalls)
	j = Judge(Input{Op: "status", Stage: 10, A1: drawCalls(r, 300, 0.001, 30*time.Millisecond, 0.3, 0), A2: drawCalls(r, 30, 0.001, 30*time.Millisecond, 0.3, 0)}, cfg)
	t.Logf("thin: %s %v further %d", j.Verdict, j.Reasons, j.FurtherCalls)
}

// A/A: both backends drawn from the same distributions; 500 canaries,
// each looked at after every 100 Approach 2 calls up to 3,000.
func TestJudgeAAFalseAlarms(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cfg := JudgeConfig{}.WithDefaults()
	const canaries = 500
	rolled := 0
	for range canaries {
		a1, a2 := NewCalls(), NewCalls()
		for i := 1; i <= 3000; i++ {
			a2.Add(drawCall(r, 0.02, 400*time.Millisecond, 0.6, 0))
			a1.Add(drawCall(r, 0.02, 400*time.Millisecond, 0.6, 0))
			if i%100 == 0 && Judge(Input{Op: "push", Stage: 50, A1: a1, A2: a2, NoForecast: true}, cfg).Verdict == VerdictRollback {
				rolled++
				break
			}
		}
	}
	rate := float64(rolled) / canaries
	t.Logf("A/A: %d of %d canaries ever rolled back (%.2f%%; configured false-alarm rate %.2f%%)", rolled, canaries, 100*rate, 100*cfg.FalseAlarmRate)
	if rate > cfg.FalseAlarmRate {
		t.Errorf("false alarms %.2f%% exceed %.2f%%", 100*rate, 100*cfg.FalseAlarmRate)
	}
}
