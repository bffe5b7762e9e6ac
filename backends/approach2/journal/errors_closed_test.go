package journal

import (
	"context"
	"errors"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestClosedJournalIsUnavailable: a call still running when its process
// closes the journal (a gateway's drain timeout passed) is told to retry
// elsewhere (unavailable), not that gitgate failed (internal). The fleet's
// rolling restart at 100 agents saw "closed pool" answered as internal.
func TestClosedJournalIsUnavailable(t *testing.T) {
	j, err := Open(t.Context(), newSchema(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	_, err = j.Get(context.Background(), 1)
	var be *backends.Error
	if !errors.As(err, &be) || be.Category != backends.Unavailable {
		t.Fatalf("a call on a closed journal: %v, want category unavailable", err)
	}
}
