package approach2_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestEngineRefusalNotStartedCrossesTheWire: an engine error marked not
// started (admission at capacity) reaches the gateway's client with its
// category and the mark, so that the gateway may fall back for it; an
// error without the mark stays started.
func TestEngineRefusalNotStartedCrossesTheWire(t *testing.T) {
	var refuse error
	engine := backends.ExecutorFunc(func(context.Context, backends.Request) (backends.Result, error) { return nil, refuse })
	c := backendtest.ServeApproach2(t, engine, approach2.ClientConfig{})
	for _, tc := range []struct {
		err        error
		notStarted bool
	}{
		{backends.NotStarted(backends.Errorf(backends.Unavailable, "at capacity")), true},
		{backends.Errorf(backends.Unavailable, "the remote went away"), false},
	} {
		refuse = tc.err
		_, err := c.Execute(t.Context(), statusReq())
		if backends.CategoryOf(err) != backends.Unavailable || errors.Is(err, backends.ErrNotStarted) != tc.notStarted {
			t.Errorf("engine error %v: client got %v (not started %v), want unavailable, not started %v",
				tc.err, err, errors.Is(err, backends.ErrNotStarted), tc.notStarted)
		}
	}
}
