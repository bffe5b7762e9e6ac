package canary

import "testing"

func TestNextStage(t *testing.T) {
	for cur, want := range map[int]int{0: 10, 10: 50, 50: 100, 25: 50} {
		if got, ok := NextStage(cur); !ok || got != want {
			t.Errorf("after %d: %d %v", cur, got, ok)
		}
	}
	if _, ok := NextStage(100); ok {
		t.Error("a stage after 100%")
	}
}
