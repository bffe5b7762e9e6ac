package approach1_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/sandbox/redisbind"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// serveApproach2 serves engine as the Approach 2 service over gRPC on
// loopback and returns a connected client.
func serveApproach2(t *testing.T, engine backends.Executor) *approach2.Client {
	t.Helper()
	return backendtest.ServeApproach2(t, engine, approach2.ClientConfig{})
}

// TestShelfThroughApproach2WithRedis: with bindings in Redis, a workspace
// used through the Approach 2 service and reaped by the service is kept
// in Redis past the idle TTL, and restored intact by its next call
// through the service, whose notice crosses gRPC; a workspace the service
// shelved is restored just as well by Approach 1 sharing the bindings and
// the vault.
func TestShelfThroughApproach2WithRedis(t *testing.T) {
	env := backendtest.NewEnv(t)
	rdb := backendtest.Redis(t)
	prefix := backendtest.RedisPrefix(t, rdb)
	bindings := redisbind.New(rdb, redisbind.Options{Prefix: prefix, TTL: time.Hour})
	svc := newShelfWorld(t, env, shelfOptions{bindings: bindings, backend: "approach2"})
	gw := newShelfWorld(t, env, shelfOptions{bindings: bindings, vaultDir: svc.vaultDir})
	client := serveApproach2(t, svc.ex)

	backendtest.Clone(t, client, env, env.Agent, "w")
	backendtest.Clone(t, client, env, env.Agent, "v")
	makeUnsavedWorkThrough(t, svc, client, "w")
	backendtest.Do[*backends.WriteFileResult](t, client, env.Agent, &backends.WriteFileRequest{Scope: backends.Scope{Workspace: "v"}, Path: "v.txt", Content: "v\n"})
	before := stateThrough(t, svc, client, "w")

	// The idle TTL passes: on the manager's clock, and in Redis, where
	// the sandbox's use marker (redisbind's sandbox set) expires — the
	// bindings with unsaved work stay (the retention).
	if err := rdb.Del(t.Context(), prefix+"sandbox:"+svc.binding(t, "w").SandboxID).Err(); err != nil {
		t.Fatal(err)
	}
	if n := svc.reap(t); n != 1 {
		t.Fatalf("the service reaped %d sandboxes, want 1", n)
	}
	shelved := svc.binding(t, "w")
	if shelved.Shelf == "" || shelved.SandboxID != "" {
		t.Fatalf("binding in Redis after the reap = %+v, want it shelved", shelved)
	}
	ttl, err := rdb.PTTL(t.Context(), prefix+"binding:alpha/w").Result()
	if err != nil || ttl <= time.Hour {
		t.Fatalf("shelved binding expires in %v (%v), want the retention, longer than the TTL", ttl, err)
	}

	st := backendtest.Do[*backends.StatusResult](t, client, env.Agent, &backends.StatusRequest{Scope: backends.Scope{Workspace: "w"}})
	if st.Backend != approach2.Name.String() || len(st.Notices) != 1 || !strings.Contains(st.Notices[0], "restored") {
		t.Fatalf("result through the service: backend %s, notices %q", st.Backend, st.Notices)
	}
	if after := stateThrough(t, svc, client, "w"); !reflect.DeepEqual(after, before) {
		t.Errorf("restored workspace differs:\n got %+v\nwant %+v", after, before)
	}
	if got := svc.metric(t, "gitgate_workspaces_restored_total", "outcome", "ok"); got != 1 {
		t.Errorf("service's gitgate_workspaces_restored_total{outcome=ok} = %v, want 1", got)
	}

	// Shelved by the service, restored by Approach 1.
	r := backendtest.Do[*backends.ReadFileResult](t, gw.ex, env.Agent, &backends.ReadFileRequest{Scope: backends.Scope{Workspace: "v"}, Path: "v.txt"})
	if r.Content != "v\n" || len(r.Notices) != 1 {
		t.Fatalf("Approach 1 read of the workspace the service shelved: %+v", r)
	}
	if got := gw.vaultEntries(t); len(got) != 0 {
		t.Errorf("vault after both restores holds %v", got)
	}
}
