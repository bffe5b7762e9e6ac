package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
)

// shadowRoundCalls is how many statuses run between two changes of the
// shadow rate.
const shadowRoundCalls = 200

// BenchmarkShadowOverheadP95 measures what shadowing 10 % of an agent's
// statuses on the Approach 2 service costs the agent: the gateway serves
// status from Approach 1 and the flag file alternates, in rounds of 200
// calls, between no shadowing and 10 % (each change applied before its
// round starts), so both conditions see the same machine noise. It reports
// both P95s and their ratio (the target is ≤ 1.05), and fails if no shadow
// comparison was recorded. Run with -benchtime 4800x (24 rounds): the
// P95 of fewer calls moves by more than the 5 % it is meant to resolve.
func BenchmarkShadowOverheadP95(b *testing.B) { shadowOverhead(b, 0.1, false) }

// BenchmarkShadowOverheadP95Writes is the same for writes: each step is a
// write_file and a commit (both timed), and the shadowed rounds predict 10 %
// of them on the Approach 2 service (a commit's prediction runs five git
// commands there).
func BenchmarkShadowOverheadP95Writes(b *testing.B) { shadowOverhead(b, 0.1, true) }

// BenchmarkShadowNoiseFloorP95 is the same measurement with nothing
// shadowed in either condition: the spread of its ratio around 1 is what
// the machine's noise alone does to BenchmarkShadowOverheadP95's.
func BenchmarkShadowNoiseFloorP95(b *testing.B) { shadowOverhead(b, 0, false) }

// BenchmarkShadowOverheadP95SeparateCores is BenchmarkShadowOverheadP95
// with the Approach 2 service (and the git it runs) pinned to one core and
// the agent, the gateway and its git to the other: the production shape,
// where the service has its own host, as far as two cores can show it.
func BenchmarkShadowOverheadP95SeparateCores(b *testing.B) {
	pin(b, os.Getpid(), "0")
	shadowOverhead(b, 0.1, false, func(service *os.Process) { pin(b, service.Pid, "1") })
}

// pin sets the CPU affinity of every thread of pid (children started
// later inherit it), restoring all CPUs at the end of the benchmark.
func pin(b *testing.B, pid int, cpus string) {
	b.Helper()
	set := func(cpus string) error {
		return exec.Command("/usr/bin/taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).Run()
	}
	if err := set(cpus); err != nil {
		b.Skipf("taskset: %v", err)
	}
	b.Cleanup(func() { _ = set("0-" + strconv.Itoa(runtime.NumCPU()-1)) })
}

// shadowOverhead alternates rounds between no shadowing and shadowRate,
// of statuses or (writes) of write_file + commit steps.
func shadowOverhead(b *testing.B, shadowRate float64, writes bool, tune ...func(service *os.Process)) {
	tuneRuntime()
	f := flags.NewFile(backends.OpNames())
	w, flagPath, service := newCanaryWorld(b, f)
	for _, fn := range tune {
		fn(service)
	}
	c := w.httpClient(b, agentToken)
	w.ok(b, c, "clone", map[string]any{"workspace": "shadow-bench", "url": w.repoURL})
	ops := []string{"status"}
	if writes {
		ops = []string{"write_file", "commit"}
	}
	step := func(i int) []time.Duration {
		var took []time.Duration
		for _, op := range ops {
			args := map[string]any{"workspace": "shadow-bench"}
			switch op {
			case "write_file":
				args["path"], args["content"] = "bench.txt", strconv.Itoa(i)
			case "commit":
				args["message"] = "bench " + strconv.Itoa(i)
			}
			t0 := time.Now()
			if res := w.call(b, c, op, args); res.IsError {
				b.Fatal(text(res))
			}
			took = append(took, time.Since(t0))
		}
		return took
	}
	for i := range shadowRoundCalls { // warm up: the first calls after a clone are slower and would bias the first condition
		step(-1 - i)
	}
	setRate := func(rate float64) {
		for _, op := range ops {
			if err := f.SetShadow(op, rate); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Save(flagPath); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second) // applied within ~300 ms; let the previous round's shadows finish too
	}
	var plain, shadowed []time.Duration
	rate, n, round := 0.0, 0, 0
	setRate(rate)
	for b.Loop() {
		if n > 0 && n%shadowRoundCalls == 0 {
			rate = shadowRate - rate
			setRate(rate)
			round++
		}
		n++
		if took := step(n); round%2 == 0 {
			plain = append(plain, took...)
		} else {
			shadowed = append(shadowed, took...)
		}
	}
	if len(plain) == 0 || len(shadowed) == 0 {
		b.Fatalf("%d calls: run at least %d (-benchtime %dx) so that both conditions are measured", n, 2*shadowRoundCalls, 12*shadowRoundCalls)
	}
	time.Sleep(time.Second) // the last shadows, then the ledger's flush
	entries, err := canary.ReadFile(flagPath+".ledger.jsonl", time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	comparisons, mismatches, stale := 0, 0, 0
	for _, e := range entries {
		if e.Kind == "comparison" {
			comparisons++
			switch e.Outcome {
			case "mismatch":
				mismatches++
				if mismatches <= 3 {
					b.Logf("mismatch in %s: %s", e.Op, e.Detail)
				}
			case "stale":
				stale++
			}
		}
	}
	if comparisons == 0 && shadowRate > 0 {
		b.Fatal("no shadow comparison was recorded: the shadowed rounds did not shadow")
	}
	if comparisons > 0 && shadowRate == 0 {
		b.Fatal("shadow comparisons were recorded with nothing shadowed")
	}
	p0, p1 := testkit.Percentile(plain, 95), testkit.Percentile(shadowed, 95)
	b.ReportMetric(float64(p0.Microseconds()), "plain-p95-µs")
	b.ReportMetric(float64(p1.Microseconds()), "shadowed-p95-µs")
	b.ReportMetric(float64(p1)/float64(p0), "p95-ratio")
	b.ReportMetric(float64(comparisons)/float64(len(shadowed)), "shadowed-share")
	if comparisons > 0 {
		b.ReportMetric(float64(mismatches)/float64(comparisons), "mismatch-share")
		b.ReportMetric(float64(stale)/float64(comparisons), "stale-share")
	}
}
