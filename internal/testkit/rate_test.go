package testkit_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/internal/testkit"
)

func TestParallelRateMakesEveryCallOnce(t *testing.T) {
	var mu sync.Mutex
	calls := map[int]int{}
	if r := testkit.ParallelRate(1000, 4, func(w int) { mu.Lock(); calls[w]++; mu.Unlock() }); r <= 0 {
		t.Errorf("rate %v, want > 0", r)
	}
	total := 0
	for w, n := range calls {
		if w < 0 || w >= 4 {
			t.Errorf("worker %d, want 0 to 3", w)
		}
		total += n
	}
	if total != 1000 {
		t.Errorf("%d calls, want 1000", total)
	}
}

func TestAlternateOrderAndMedians(t *testing.T) {
	var order []string
	var sizes []int
	var calledA float64
	a := func(n int) float64 { order, sizes = append(order, "A"), append(sizes, n); calledA++; return calledA }
	b := func(n int) float64 { order, sizes = append(order, "B"), append(sizes, n); return 10 }
	ra, rb, ratio := testkit.Alternate(10, 4, 5, a, b)
	if want := []string{"A", "B", "B", "A", "A", "B", "B", "A"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if slices.ContainsFunc(sizes, func(n int) bool { return n != 5 }) {
		t.Errorf("round sizes %v, want 5 each (10/4 raised to the minimum)", sizes)
	}
	// A's rates are 1, 2, 3, 4 and the ratios 10, 5, 3.3, 2.5.
	if ra != 3 || rb != 10 || ratio != 10.0/2 {
		t.Errorf("Alternate = %v, %v, %v; want 3, 10, 5", ra, rb, ratio)
	}
}

func TestPercentile(t *testing.T) {
	v := []int{5, 1, 4, 2, 3}
	if m := testkit.Median(v); m != 3 {
		t.Errorf("median %d, want 3", m)
	}
	if p := testkit.Percentile(v, 95); p != 5 {
		t.Errorf("95th percentile %d, want 5", p)
	}
	if !slices.Equal(v, []int{5, 1, 4, 2, 3}) {
		t.Errorf("v modified: %v", v)
	}
}
