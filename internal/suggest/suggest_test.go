package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"ttl", "scope", "provider"}
	for _, c := range []struct {
		s, want string
		ok      bool
	}{
		{"tll", "ttl", true},     // a transposition
		{"SCOPE", "scope", true}, // case is ignored
		{"provder", "provider", true},
		{"colour", "", false}, // nothing near
	} {
		got, ok := Closest(c.s, names)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Closest(%q) = %q, %v; want %q, %v", c.s, got, ok, c.want, c.ok)
		}
	}
	if _, ok := Closest("x", nil); ok {
		t.Error("Closest with no candidates found one")
	}
}
