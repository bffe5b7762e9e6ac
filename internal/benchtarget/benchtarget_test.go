package benchtarget

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkThroughput32-2   	3200	  60398260 ns/op	        56.99 commit-approach1-ops/s	         0.7853 commit-approach2/approach1	 0.97 write_file-approach2/approach1
BenchmarkStatusLatency-2 4000 1 ns/op 850 added-median-µs
BenchmarkSplit-2   	2026/12/06 18:04:53 ERROR: [health_service] a log line in the way
     800	 608678963 ns/op	         1.058 commit-approach2/approach1
PASS
`

func TestJudge(t *testing.T) {
	var raw strings.Builder
	res, err := Parse(strings.NewReader(sample), &raw)
	if err != nil || len(res) != 3 {
		t.Fatalf("Parse: %v %v", res, err)
	}
	if raw.String() != sample {
		t.Fatalf("raw copy differs: %q", raw.String())
	}
	targets := []Target{
		{"BenchmarkThroughput32", "commit-approach2/approach1", AtLeast, 0.95, "commit"},
		{"BenchmarkThroughput32", "write_file-approach2/approach1", AtLeast, 0.95, "write"},
		{"BenchmarkThroughput32", "status-approach2/approach1", AtLeast, 0.95, "status"},
		{"BenchmarkStatusLatency", "added-median-µs", Below, 1000, "added"},
		{"BenchmarkNotRun", "x", Below, 1, "never"},
	}
	vs := Judge(targets, res, false)
	if len(vs) != 4 {
		t.Fatalf("got %d verdicts, want 4 (the benchmark that did not run is left out): %+v", len(vs), vs)
	}
	want := []string{"MISSED", "met", "ABSENT", "met"}
	for i, v := range vs {
		if got := strings.Fields(v.Line())[0]; got != want[i] {
			t.Errorf("%s: %q, want %s", v.What, v.Line(), want[i])
		}
	}
	if l := vs[0].Line(); !strings.Contains(l, "0.785 (target >= 0.95)") {
		t.Errorf("line %q does not show the figure against its target", l)
	}
	if all := Judge(targets, res, true); len(all) != 5 || all[4].Found {
		t.Errorf("Judge(all) = %+v", all)
	}
	split := Judge([]Target{{"BenchmarkSplit", "commit-approach2/approach1", AtLeast, 1, "split"}}, res, false)
	if len(split) != 1 || !split[0].Met || split[0].Got != 1.058 {
		t.Errorf("a result line split by a log line: %+v", split)
	}
}
