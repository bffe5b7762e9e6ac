package approach2

import (
	"errors"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCategoriesRoundTrip: every category survives the status mapping,
// including the two that share ResourceExhausted, and so does "started".
func TestCategoriesRoundTrip(t *testing.T) {
	for _, cat := range backends.Categories {
		for _, started := range []bool{false, true} {
			err := callError(toStatus(backends.Errorf(cat, "message for %s", cat), started), true)
			if got := backends.CategoryOf(err); got != cat {
				t.Errorf("%s came back as %s", cat, got)
			}
			if backends.MessageOf(err) != "message for "+string(cat) {
				t.Errorf("%s: message %q", cat, backends.MessageOf(err))
			}
			if errors.Is(err, backends.ErrNotStarted) == started {
				t.Errorf("%s started=%v: not-started mark is %v", cat, started, !started)
			}
		}
	}
}

// TestStatusesFromGRPCItself: without the service's ErrorInfo, a failure
// before the request left is "not started" except for deadlines and
// cancellations, which may race with the sending; after it left, nothing
// but the service's own error can say "not started".
func TestStatusesFromGRPCItself(t *testing.T) {
	cases := []struct {
		code       codes.Code
		sent       bool
		cat        backends.Category
		notStarted bool
	}{
		{codes.Unavailable, false, backends.Unavailable, true},
		{codes.Unavailable, true, backends.Unavailable, false},
		{codes.DeadlineExceeded, false, backends.Timeout, false},
		{codes.Canceled, false, backends.Canceled, false},
		{codes.Unknown, false, backends.Internal, true},
	}
	for _, c := range cases {
		err := callError(status.Error(c.code, "x"), c.sent)
		if backends.CategoryOf(err) != c.cat || errors.Is(err, backends.ErrNotStarted) != c.notStarted {
			t.Errorf("%s (sent %v): %s not-started=%v, want %s %v", c.code, c.sent,
				backends.CategoryOf(err), errors.Is(err, backends.ErrNotStarted), c.cat, c.notStarted)
		}
	}
}
