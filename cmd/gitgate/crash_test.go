package main

import (
	"context"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/approach2/journal"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// TestServiceKilledMidPush: the service is killed with SIGKILL while a push
// is in flight; once it restarts, the journal agrees with the remote, and a
// retry with the same key is answered from the journal without pushing again.
func TestServiceKilledMidPush(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	addr, proc := w.startBackend(t)
	c, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ada := backends.Principal{Project: "alpha", Agent: "ada", AuthorName: "Ada Agent", AuthorEmail: "ada@agents.example"}
	ws := func(key string) backends.Scope {
		return backends.Scope{Principal: ada, Workspace: "crash", IdempotencyKey: key}
	}
	backendtest.Do[*backends.CloneResult](t, c, ada, &backends.CloneRequest{Scope: ws(""), URL: w.repoURL})
	backendtest.Do[*backends.CheckoutResult](t, c, ada, &backends.CheckoutRequest{Scope: ws(""), Branch: "crash", Create: true})
	backendtest.Do[*backends.WriteFileResult](t, c, ada, &backends.WriteFileRequest{Scope: ws(""), Path: "c.txt", Content: "c"})
	commit := backendtest.Do[*backends.CommitResult](t, c, ada, &backends.CommitRequest{Scope: ws(""), Message: "before the crash"})

	arrived, release := make(chan struct{}), make(chan struct{})
	hold := func(string) { close(arrived); <-release }
	w.pushHook.Store(&hold)
	pushed := make(chan error, 1)
	go func() {
		_, err := c.Execute(context.WithoutCancel(t.Context()), &backends.PushRequest{Scope: ws("push-1")})
		pushed <- err
	}()
	<-arrived
	if err := proc.Kill(); err != nil { // SIGKILL, mid-push
		t.Fatal(err)
	}
	if err := <-pushed; backends.CategoryOf(err) != backends.Unavailable {
		t.Fatalf("push to a killed service: %v", err)
	}
	w.pushHook.Store(nil)
	close(release) // the orphaned git push now completes
	waitRemote(t, w, "refs/heads/crash", commit.SHA)

	addr, _ = w.startBackend(t) // restart: reconciliation runs before SERVING
	j, err := journal.Open(t.Context(), w.pgDSN, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	waitSettled(t, j) // once the dead holder's lease expires
	entries, err := j.Unsettled(t.Context(), 0)
	if err != nil || len(entries) != 0 {
		t.Fatalf("entries still started: %+v %v", entries, err)
	}
	c2, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	retry := backendtest.Do[*backends.PushResult](t, c2, ada, &backends.PushRequest{Scope: ws("push-1")})
	if retry.Head != commit.SHA || w.remote.Pushes("demo") != 1 {
		t.Fatalf("retried push %+v, remote saw %d pushes", retry, w.remote.Pushes("demo"))
	}
}

func waitSettled(t *testing.T, j *journal.Journal) {
	t.Helper()
	testkit.EventuallyEvery(t, "the interrupted push is reconciled", 100*time.Millisecond, func() bool {
		left, err := j.Unsettled(t.Context(), 0)
		return err == nil && len(left) == 0
	})
}

func waitRemote(t *testing.T, w *world, ref, want string) {
	t.Helper()
	testkit.Eventually(t, "the remote's "+ref+" reaches "+want, func() bool {
		sha, _ := w.remote.Ref(t.Context(), "demo", ref)
		return sha == want
	})
}
