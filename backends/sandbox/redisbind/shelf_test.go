package redisbind

import (
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestShelvedBindingOutlivesTTL: a shelved binding (its sandbox gone, its
// work in the vault) is stored with its shelf, expires after the
// retention rather than the idle TTL — also when it is read, and its
// project's set with it — and belongs to no sandbox's set.
func TestShelvedBindingOutlivesTTL(t *testing.T) {
	c := backendtest.Redis(t)
	const ttl, retention = time.Minute, 48 * time.Hour
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: ttl, Retention: retention})
	ctx := t.Context()
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	live := binding(key("p", "", "live"), "s1")
	shelved := binding(key("p", "", "w"), "s1")
	for _, b := range []sandbox.Binding{live, shelved} {
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	shelved.SandboxID, shelved.Root, shelved.Shelf = "", "", "0123abcd"
	shelved.Dirty, shelved.Unpushed, shelved.Branch = true, "topic", "topic"
	if err := s.Put(ctx, shelved); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, shelved.Key)
	if err != nil || !ok || got != shelved {
		t.Fatalf("Get = %+v, %v, %v; want %+v", got, ok, err, shelved)
	}
	if d := pttl(s.bindingKey(shelved.Key.String())); d <= ttl || d > retention {
		t.Errorf("shelved binding expires in %v after a Get, want the retention (%v)", d, retention)
	}
	if d := pttl(s.projectKey("p")); d <= ttl {
		t.Errorf("project set expires in %v, before its shelved member", d)
	}
	// Using another workspace of the project does not cut the set back.
	if _, _, err := s.Get(ctx, live.Key); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, live); err != nil {
		t.Fatal(err)
	}
	if d := pttl(s.projectKey("p")); d <= ttl {
		t.Errorf("project set expires in %v after a live member's use, before its shelved member", d)
	}
	if d := pttl(s.bindingKey(live.Key.String())); d > ttl {
		t.Errorf("live binding expires in %v, want the TTL (%v)", d, ttl)
	}
	// The old sandbox going takes the live binding only.
	if err := s.DeleteSandbox(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "p")
	if err != nil || len(list) != 1 || list[0] != shelved {
		t.Fatalf("List after the sandbox went = %+v, %v; want the shelved binding only", list, err)
	}
	if n, _ := c.Exists(ctx, s.sandboxKey("")).Result(); n != 0 {
		t.Error("a shelved binding was added to a sandbox set with an empty id")
	}
	// Restored into a new sandbox, still with unsaved work: kept for the
	// retention (the reaper must find it to shelve it again), while its
	// sandbox's set expires with the TTL; once everything is pushed and
	// committed, the TTL again.
	restored := shelved
	restored.SandboxID, restored.Root, restored.Shelf = "s2", "/sbx/s2", ""
	if err := s.Put(ctx, restored); err != nil {
		t.Fatal(err)
	}
	if d := pttl(s.bindingKey(restored.Key.String())); d <= ttl {
		t.Errorf("binding with unsaved work expires in %v, want the retention (%v)", d, retention)
	}
	if d := pttl(s.sandboxKey("s2")); d > ttl {
		t.Errorf("sandbox set expires in %v, want the TTL (%v)", d, ttl)
	}
	if used, err := s.UsedWithin(ctx, "s2"); err != nil || !used {
		t.Errorf("UsedWithin(s2) = %v, %v after the restore", used, err)
	}
	restored.Dirty, restored.Unpushed = false, ""
	if err := s.Put(ctx, restored); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, restored.Key); err != nil {
		t.Fatal(err)
	}
	if d := pttl(s.bindingKey(restored.Key.String())); d > ttl {
		t.Errorf("binding with nothing unsaved expires in %v, want the TTL (%v)", d, ttl)
	}
}

// TestUnsavedBindingOutlivesTTL: a binding with uncommitted changes or
// commits not pushed — or from before that was tracked — is kept for the
// retention, also when read, so that the reaper finds it to save its work
// when the sandbox idles out; one with nothing unsaved keeps the TTL.
func TestUnsavedBindingOutlivesTTL(t *testing.T) {
	c := backendtest.Redis(t)
	const ttl, retention = time.Minute, 48 * time.Hour
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: ttl, Retention: retention})
	ctx := t.Context()
	cases := map[string]func(*sandbox.Binding){
		"dirty":    func(b *sandbox.Binding) { b.Dirty = true },
		"unpushed": func(b *sandbox.Binding) { b.Unpushed = "main" },
		"clean":    func(*sandbox.Binding) {},
	}
	for name, change := range cases {
		b := binding(key("p", "", name), "s1")
		change(&b)
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, b.Key); err != nil {
			t.Fatal(err)
		}
		d, err := c.PTTL(ctx, s.bindingKey(b.Key.String())).Result()
		if err != nil {
			t.Fatal(err)
		}
		if long := d > ttl; long != (name != "clean") {
			t.Errorf("%s binding expires in %v (TTL %v, retention %v)", name, d, ttl, retention)
		}
	}
	// A record from before the state was tracked counts as unsaved.
	old := `{"project":"p","name":"old","sandbox_id":"s1","root":"/r","url":"https://h/r.git","created":"2026-01-01T00:00:00Z","last_used":"2026-01-01T00:00:00Z"}`
	if err := c.Set(ctx, s.bindingKey("p/old"), old, ttl).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get(ctx, key("p", "", "old")); !ok || err != nil {
		t.Fatalf("Get of an old record = %v, %v", ok, err)
	}
	if d, _ := c.PTTL(ctx, s.bindingKey("p/old")).Result(); d <= ttl {
		t.Errorf("an untracked old record expires in %v, want the retention", d)
	}
}

// TestRetentionDefaults: the retention defaults to DefaultRetention and is
// never shorter than the TTL.
func TestRetentionDefaults(t *testing.T) {
	c := backendtest.Redis(t)
	if s := New(c, Options{TTL: time.Hour}); s.retention != DefaultRetention {
		t.Errorf("default retention = %v, want %v", s.retention, DefaultRetention)
	}
	if s := New(c, Options{TTL: time.Hour, Retention: time.Minute}); s.retention != time.Hour {
		t.Errorf("retention shorter than the TTL = %v, want the TTL", s.retention)
	}
}
