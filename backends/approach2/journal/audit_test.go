package journal

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/lock"
)

func TestLockAuditRoundTrip(t *testing.T) {
	t.Parallel()
	j := newJournal(t, Options{})
	ctx := testCtx(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	want := []lock.AuditEvent{
		{Key: "ws/a", Holder: "h1", Fence: 1, Event: "acquire", At: at},
		{Key: "ws/a", Holder: "h1", Fence: 1, Event: "renew", At: at.Add(time.Second)},
		{Key: "ws/a", Holder: "h1", Fence: 1, Event: "release", At: at.Add(-time.Hour)}, // order is by record, not time
		{Key: "ws/a", Holder: "h2", Fence: 2, Event: "acquire", At: at.Add(2 * time.Second)},
	}
	for i, e := range want {
		if err := j.RecordLockEvent(ctx, e); err != nil {
			t.Fatalf("RecordLockEvent #%d: %v", i, err)
		}
		if i == 1 {
			if err := j.RecordLockEvent(ctx, lock.AuditEvent{Key: "ws/b", Holder: "h9", Fence: 9, Event: "lost"}); err != nil {
				t.Fatalf("RecordLockEvent ws/b: %v", err)
			}
		}
	}
	got, err := j.LockEvents(ctx, "ws/a")
	if err != nil {
		t.Fatalf("LockEvents: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("LockEvents = %+v, want %d events", got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Holder != w.Holder || g.Fence != w.Fence || g.Event != w.Event || !g.At.Equal(w.At) {
			t.Fatalf("event #%d = %+v, want %+v", i, g, w)
		}
	}

	b, err := j.LockEvents(ctx, "ws/b")
	if err != nil {
		t.Fatalf("LockEvents ws/b: %v", err)
	}
	if len(b) != 1 || b[0].Event != "lost" || b[0].Fence != 9 || time.Since(b[0].At) > time.Minute || time.Since(b[0].At) < -time.Minute {
		t.Fatalf("ws/b events = %+v, want one lost event stamped now", b)
	}
	none, err := j.LockEvents(ctx, "ws/none")
	if err != nil || len(none) != 0 {
		t.Fatalf("LockEvents(ws/none) = %+v, %v", none, err)
	}
}
