package redisbind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

func key(project, agent, name string) sandbox.WorkspaceKey {
	return sandbox.WorkspaceKey{Project: project, Agent: agent, Name: name}
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

func binding(k sandbox.WorkspaceKey, id string) sandbox.Binding {
	return sandbox.Binding{
		Key: k, SandboxID: id, Root: "/sbx/" + id, URL: "https://example.com/" + k.String(),
		Created: t0, LastUsed: t0.Add(time.Duration(len(k.String())) * time.Nanosecond),
	}
}

// step is one call of the shared scenario; want, when set, is its exact
// expected result (as printed by run).
type step struct {
	op   string // put, get, delete, list, deleteSandbox
	b    sandbox.Binding
	key  sandbox.WorkspaceKey
	arg  string // project or sandbox id
	want string
}

var scenario = []step{
	{op: "get", key: key("p", "", "w"), want: "not found"},
	{op: "list", arg: "p", want: ""},
	{op: "put", b: binding(key("p", "", "zeta"), "s1")},
	{op: "put", b: binding(key("p", "", "alpha"), "s1")},
	{op: "put", b: binding(key("p", "b", "x"), "s2")},
	{op: "put", b: binding(key("p", "a", "x"), "s3")},
	{op: "put", b: binding(key("q", "", "alpha"), "s1")},
	{op: "put", b: binding(key("pp", "", "alpha"), "s4")},
	{op: "get", key: key("p", "a", "x")},
	{op: "get", key: key("p", "", "x"), want: "not found"},
	{op: "list", arg: "p", want: "p/a/x p/alpha p/b/x p/zeta"},
	{op: "list", arg: "pp", want: "pp/alpha"},
	{op: "put", b: binding(key("p", "", "zeta"), "s9")}, // replaces, moves to s9
	{op: "get", key: key("p", "", "zeta")},
	{op: "delete", key: key("p", "b", "x")},
	{op: "delete", key: key("p", "b", "x")}, // deleting twice is a no-op
	{op: "get", key: key("p", "b", "x"), want: "not found"},
	{op: "list", arg: "p", want: "p/a/x p/alpha p/zeta"},
	{op: "deleteSandbox", arg: "s1"}, // p/zeta moved to s9 and stays
	{op: "list", arg: "p", want: "p/a/x p/zeta"},
	{op: "list", arg: "q", want: ""},
	{op: "get", key: key("q", "", "alpha"), want: "not found"},
	{op: "deleteSandbox", arg: "s1"},
	{op: "deleteSandbox", arg: "s9"},
	{op: "list", arg: "p", want: "p/a/x"},
	{op: "put", b: binding(key("p", "", "alpha"), "s1")}, // rebinding after a sandbox delete
	{op: "list", arg: "p", want: "p/a/x p/alpha"},
}

// run performs st on s and prints its result.
func run(ctx context.Context, s sandbox.BindingStore, st step) (string, error) {
	switch st.op {
	case "put":
		return "", s.Put(ctx, st.b)
	case "delete":
		return "", s.Delete(ctx, st.key)
	case "deleteSandbox":
		return "", s.DeleteSandbox(ctx, st.arg)
	case "get":
		b, ok, err := s.Get(ctx, st.key)
		if !ok {
			return "not found", err
		}
		return fmt.Sprintf("%+v", b), err
	case "list":
		list, err := s.List(ctx, st.arg)
		names := make([]string, len(list))
		for i, b := range list {
			if b != binding(b.Key, b.SandboxID) {
				return "", fmt.Errorf("listed binding %+v, want %+v", b, binding(b.Key, b.SandboxID))
			}
			names[i] = b.Key.String()
		}
		return strings.Join(names, " "), err
	}
	return "", fmt.Errorf("unknown op %q", st.op)
}

// TestSameAsMemoryBindings runs one scenario against MemoryBindings and
// the Redis store and requires identical results at every step.
func TestSameAsMemoryBindings(t *testing.T) {
	c := backendtest.Redis(t)
	ctx := t.Context()
	mem, rs := sandbox.NewMemoryBindings(), New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: time.Minute})
	for i, st := range scenario {
		want, err := run(ctx, mem, st)
		if err != nil {
			t.Fatalf("step %d %s on memory: %v", i, st.op, err)
		}
		got, err := run(ctx, rs, st)
		if err != nil {
			t.Fatalf("step %d %s on redis: %v", i, st.op, err)
		}
		if got != want {
			t.Fatalf("step %d %s %v%s:\n redis:  %s\n memory: %s", i, st.op, st.key, st.arg, got, want)
		}
		if st.want != "" && got != st.want || st.op == "list" && st.want == "" && got != "" {
			t.Fatalf("step %d %s %s = %q, want %q", i, st.op, st.arg, got, st.want)
		}
	}
}

func TestTimesRoundTripInUTC(t *testing.T) {
	c := backendtest.Redis(t)
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: time.Minute})
	ctx := t.Context()
	local := time.FixedZone("X", 5*3600+1800)
	b := binding(key("p", "", "w"), "s1")
	b.Created, b.LastUsed = time.Date(2031, 5, 6, 7, 8, 9, 987654321, local), time.Time{}
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, b.Key)
	if !ok || err != nil {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if got.Created != b.Created.UTC() || got.Created.Location() != time.UTC || !got.LastUsed.IsZero() {
		t.Fatalf("times came back as %v and %v, want %v and zero", got.Created, got.LastUsed, b.Created.UTC())
	}
}

// TestUnsavedStateRoundTrips: what a replacement sandbox could not
// restore is stored, and a record from before it was tracked reads as
// having uncommitted changes (never silently cloned again).
func TestUnsavedStateRoundTrips(t *testing.T) {
	c := backendtest.Redis(t)
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: time.Minute})
	ctx := t.Context()
	b := binding(key("p", "", "w"), "s1")
	b.Branch, b.Dirty, b.Unpushed = "topic", true, "topic main"
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Get(ctx, b.Key); err != nil || got.Branch != "topic" || !got.Dirty || got.Unpushed != "topic main" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	old, err := decode(`{"project":"p","name":"w","sandbox_id":"s1","root":"/r","url":"https://h/r.git","created":"2026-01-01T00:00:00Z","last_used":"2026-01-01T00:00:00Z"}`)
	if err != nil || !old.Dirty || old.Unsaved() == "" {
		t.Fatalf("an untracked record decodes as %+v (%v)", old, err)
	}
}

func TestBindingsExpire(t *testing.T) {
	t.Parallel() // its own key prefix; it mostly waits for the TTL to run down
	c := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c)
	const ttl = 3 * time.Second
	s := New(c, Options{Prefix: prefix, TTL: ttl})
	ctx := t.Context()
	b := binding(key("p", "", "w"), "s1")
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Reading resets the TTL: a binding in use outlives it. Observed on the
	// key's remaining life, not on the clock: once it has run down, a Get
	// sets it back near the full TTL.
	bk := prefix + "binding:" + b.Key.String()
	for range 3 {
		testkit.Eventually(t, "the binding's TTL runs down", func() bool { return c.PTTL(ctx, bk).Val() < ttl*2/3 })
		if _, ok, err := s.Get(ctx, b.Key); !ok || err != nil {
			t.Fatalf("binding read while its TTL ran expired after all: %v, %v", ok, err)
		}
		if left := c.PTTL(ctx, bk).Val(); left < ttl*2/3 {
			t.Fatalf("a Get left the binding %v to live, want its TTL (%v) restarted", left, ttl)
		}
	}
	if list, err := s.List(ctx, "p"); len(list) != 1 || err != nil {
		t.Fatalf("List after the reads = %v, %v; want the binding", list, err)
	}
	testkit.Eventually(t, "the binding expires once unused", func() bool { return c.Exists(ctx, bk).Val() == 0 })
	if _, ok, err := s.Get(ctx, b.Key); ok || err != nil {
		t.Fatalf("Get after the TTL = %v, %v; want not found", ok, err)
	}
	if list, err := s.List(ctx, "p"); len(list) != 0 || err != nil {
		t.Fatalf("List after the TTL = %v, %v; want nothing", list, err)
	}
	testkit.Eventually(t, "the sets expire with their last binding", func() bool {
		return c.Exists(ctx, prefix+"bindings:p", prefix+"sandbox:s1").Val() == 0
	})
}

func TestListDropsExpiredMembers(t *testing.T) {
	c := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c)
	s := New(c, Options{Prefix: prefix, TTL: time.Minute})
	ctx := t.Context()
	for _, name := range []string{"a", "b"} {
		if err := s.Put(ctx, binding(key("p", "", name), "s1")); err != nil {
			t.Fatal(err)
		}
	}
	c.Del(ctx, prefix+"binding:p/a") // as if it had expired
	if list, err := s.List(ctx, "p"); len(list) != 1 || err != nil || list[0].Key.Name != "b" {
		t.Fatalf("List = %v, %v; want only p/b", list, err)
	}
	if got := c.SMembers(ctx, prefix+"bindings:p").Val(); len(got) != 1 || got[0] != "p/b" {
		t.Fatalf("project set = %v after List, want [p/b]", got)
	}
}

// TestTwoStoresShareState is the point of the package: a gateway and a
// service, each with its own Store, see one set of bindings.
func TestTwoStoresShareState(t *testing.T) {
	c1, c2 := backendtest.Redis(t), backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c1)
	gateway, service := New(c1, Options{Prefix: prefix, TTL: time.Minute}), New(c2, Options{Prefix: prefix, TTL: time.Minute})
	ctx := t.Context()
	b := binding(key("p", "a", "w"), "s1")
	if err := gateway.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := service.Get(ctx, b.Key); !ok || err != nil || got != b {
		t.Fatalf("the other store's Get = %+v, %v, %v; want %+v", got, ok, err, b)
	}
	if list, err := service.List(ctx, "p"); len(list) != 1 || err != nil || list[0] != b {
		t.Fatalf("the other store's List = %v, %v", list, err)
	}
	if err := service.DeleteSandbox(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := gateway.Get(ctx, b.Key); ok || err != nil {
		t.Fatalf("Get after the other store's DeleteSandbox = %v, %v; want not found", ok, err)
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	s := New(backendtest.UnreachableRedis(t), Options{TTL: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b := binding(key("p", "", "w"), "s1")
	_, _, getErr := s.Get(ctx, b.Key)
	_, listErr := s.List(ctx, "p")
	for name, err := range map[string]error{
		"Get": getErr, "Put": s.Put(ctx, b), "Delete": s.Delete(ctx, b.Key),
		"List": listErr, "DeleteSandbox": s.DeleteSandbox(ctx, "s1"),
	} {
		var be *backends.Error
		if !errors.As(err, &be) || be.Category != backends.Unavailable || !strings.Contains(be.Message, "(Redis) is unavailable (") {
			t.Errorf("%s with Redis down = %v, want an unavailable *backends.Error", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("calls with Redis down ran until the deadline instead of failing")
	}
}

func TestNewRequiresTTL(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New without a TTL did not panic")
		}
	}()
	New(nil, Options{})
}

// TestDeleteSandboxKeepsRepointedBindings races DeleteSandbox(s1) with Puts
// that move every binding to s2: whatever the interleaving, each binding's
// last write is to s2, so all must survive.
func TestDeleteSandboxKeepsRepointedBindings(t *testing.T) {
	c := backendtest.Redis(t)
	s := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: time.Minute})
	ctx := t.Context()
	const n = 30
	for round := range 5 {
		for i := range n {
			if err := s.Put(ctx, binding(key("p", "", fmt.Sprint(i)), "s1")); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- s.DeleteSandbox(ctx, "s1") }()
		for i := range n {
			if err := s.Put(ctx, binding(key("p", "", fmt.Sprint(i)), "s2")); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if list, err := s.List(ctx, "p"); len(list) != n || err != nil {
			t.Fatalf("round %d: %d bindings left, want %d (%v)", round, len(list), n, err)
		}
		if err := s.DeleteSandbox(ctx, "s2"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGetResetsTheSandboxSetWhateverItsHint: Get resets the expiry of the
// set of the sandbox its binding names, in the same round trip when the
// Store expects that sandbox (it named it last time here), and in a second
// one when another process moved the binding to another sandbox meanwhile.
func TestGetResetsTheSandboxSetWhateverItsHint(t *testing.T) {
	t.Parallel() // its own key prefix; it mostly waits for TTLs to run down
	c := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, c)
	const ttl = 3 * time.Second
	here, there := New(c, Options{Prefix: prefix, TTL: ttl}), New(c, Options{Prefix: prefix, TTL: ttl})
	ctx := t.Context()
	b := binding(key("p", "", "w"), "s1")
	if err := here.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	getResets := func(set string) {
		t.Helper()
		testkit.Eventually(t, set+"'s TTL runs down", func() bool { return c.PTTL(ctx, set).Val() < ttl*2/3 })
		got, ok, err := here.Get(ctx, b.Key)
		if !ok || err != nil {
			t.Fatalf("Get = %v, %v", ok, err)
		}
		if left := c.PTTL(ctx, prefix+"sandbox:"+got.SandboxID).Val(); left < ttl*2/3 {
			t.Fatalf("after Get the set of sandbox %s has %v to live, want its TTL (%v) restarted", got.SandboxID, left, ttl)
		}
	}
	getResets(prefix + "sandbox:s1") // the hinted sandbox
	moved := binding(b.Key, "s2")
	if err := there.Put(ctx, moved); err != nil { // another process moves it
		t.Fatal(err)
	}
	getResets(prefix + "sandbox:s2") // the hint (s1) is stale
	getResets(prefix + "sandbox:s2") // and now hinted again
}
