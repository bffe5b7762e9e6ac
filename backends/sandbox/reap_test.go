package sandbox_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
)

func TestReapIdle(t *testing.T) {
	e := newEnv(t)
	a := e.acquire(sandbox.Owner{Project: "p", Agent: "a"})
	b := e.acquire(sandbox.Owner{Project: "p", Agent: "b"})
	for _, bd := range []sandbox.Binding{
		{Key: sandbox.WorkspaceKey{Project: "p", Agent: "a", Name: "one"}, SandboxID: a.ID, Root: a.Root},
		{Key: sandbox.WorkspaceKey{Project: "p", Agent: "a", Name: "two"}, SandboxID: a.ID, Root: a.Root},
		{Key: sandbox.WorkspaceKey{Project: "p", Agent: "b", Name: "one"}, SandboxID: b.ID, Root: b.Root},
	} {
		if err := e.bindings.Put(t.Context(), bd); err != nil {
			t.Fatal(err)
		}
	}

	e.clock.add(ttl - time.Second)
	if n := e.m.ReapIdle(t.Context()); n != 0 {
		t.Fatalf("ReapIdle before the TTL reaped %d", n)
	}
	e.use(b.ID) // b is used again; a stays idle

	e.clock.add(time.Second) // a has now been idle for exactly the TTL
	if n := e.m.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("ReapIdle past a's TTL reaped %d, want 1", n)
	}
	if got, _ := e.p.Find(t.Context(), a.Owner); len(got) != 0 {
		t.Errorf("provider still knows the reaped sandbox: %+v", got)
	}
	if _, err := os.Stat(a.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reaped sandbox's directory still exists (err %v)", err)
	}
	if _, err := os.Stat(b.Root); err != nil {
		t.Errorf("recently used sandbox was removed: %v", err)
	}
	list, _ := e.bindings.List(t.Context(), "p")
	if len(list) != 1 || list[0].SandboxID != b.ID {
		t.Errorf("bindings after reap = %+v, want only b's", list)
	}
	if got := e.metric("gitgate_sandboxes_active", ""); got != 1 {
		t.Errorf("gitgate_sandboxes_active = %v, want 1", got)
	}
	if got := e.metric("gitgate_sandboxes_reaped_total", ""); got != 1 {
		t.Errorf("gitgate_sandboxes_reaped_total = %v, want 1", got)
	}
	if release, ok := e.m.Use(t.Context(), a.ID); ok {
		release()
		t.Error("Use of a reaped sandbox returned ok")
	}

	// The owner gets a fresh sandbox.
	if again := e.acquire(a.Owner); again.ID == a.ID {
		t.Error("Acquire after reaping returned the reaped sandbox")
	}
	if got := e.metric("gitgate_sandboxes_active", ""); got != 2 {
		t.Errorf("gitgate_sandboxes_active = %v, want 2", got)
	}
}

func TestBusySandboxIsNotReaped(t *testing.T) {
	e := newEnv(t)
	info, release, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	useRelease, ok := e.m.Use(t.Context(), info.ID)
	if !ok {
		t.Fatal("Use of a live sandbox failed")
	}
	e.clock.add(100 * ttl)
	if n := e.m.ReapIdle(t.Context()); n != 0 {
		t.Fatalf("ReapIdle reaped %d busy sandboxes", n)
	}
	release()
	e.clock.add(100 * ttl)
	if n := e.m.ReapIdle(t.Context()); n != 0 {
		t.Fatalf("ReapIdle reaped a sandbox still held through Use")
	}
	useRelease()
	if n := e.m.ReapIdle(t.Context()); n != 0 {
		t.Fatalf("ReapIdle reaped a sandbox released just now")
	}
	e.clock.add(ttl)
	if n := e.m.ReapIdle(t.Context()); n != 1 {
		t.Fatalf("ReapIdle after release and TTL reaped %d, want 1", n)
	}
	if _, err := os.Stat(info.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory still exists (err %v)", err)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	idle := e.acquire(sandbox.Owner{Project: "p"})
	busy, release, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "q"})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	e.m.Close(t.Context())
	for _, info := range []sandbox.Info{idle, busy} {
		if _, err := os.Stat(info.Root); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Close (err %v)", info.ID, err)
		}
		if got, _ := e.p.Find(t.Context(), info.Owner); len(got) != 0 {
			t.Errorf("provider still knows %s after Close", info.ID)
		}
		if r, ok := e.m.Use(t.Context(), info.ID); ok {
			r()
			t.Errorf("Use(%s) after Close returned ok", info.ID)
		}
	}
	if got := e.metric("gitgate_sandboxes_active", ""); got != 0 {
		t.Errorf("gitgate_sandboxes_active after Close = %v, want 0", got)
	}
	if _, _, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "p"}); err == nil {
		t.Error("Acquire after Close succeeded")
	}
	if _, _, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "new"}); err == nil {
		t.Error("Acquire for a new owner after Close succeeded")
	}
}

// TestDoubleReleaseDoesNotUnbusy documents a bug: the release func of
// Acquire/Use is not idempotent, so a second call drives the busy count
// negative and a later holder's sandbox is reaped under it.
func TestDoubleReleaseDoesNotUnbusy(t *testing.T) {
	e := newEnv(t)
	info, release, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	release()
	_, holder, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer holder()
	e.clock.add(2 * ttl)
	if n := e.m.ReapIdle(t.Context()); n != 0 {
		t.Errorf("ReapIdle reaped %s while it was held", info.ID)
	}
}

// TestAcquireDuringCloseLeavesNothing documents a race: an Acquire that is
// creating a sandbox when Close runs succeeds after Close, and its sandbox
// outlives the manager.
func TestAcquireDuringCloseLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.p.gate = make(chan struct{})
	type result struct {
		info sandbox.Info
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, release, err := e.m.Acquire(t.Context(), sandbox.Owner{Project: "slow"})
		if err == nil {
			release()
		}
		done <- result{info, err}
	}()
	for e.p.creates.Load() == 0 { // Create has been entered and waits on the gate
		time.Sleep(time.Millisecond)
	}
	e.m.Close(t.Context())
	close(e.p.gate)
	r := <-done
	if r.err != nil {
		return // refusing is fine
	}
	if _, err := os.Stat(r.info.Root); err == nil {
		t.Errorf("Acquire succeeded during Close and sandbox %s outlives the manager", r.info.ID)
	}
}
