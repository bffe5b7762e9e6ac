package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// loadAgent is one agent pushing its own branch through the service in a
// loop: write, commit, push, each push with a fresh idempotency key.
type loadAgent struct {
	p       backends.Principal
	ws      string
	lastKey atomic.Value // the key of the push in flight (or last made)
}

func (a *loadAgent) scope(key string) backends.Scope {
	return backends.Scope{Principal: a.p, Workspace: a.ws, IdempotencyKey: key}
}

// prepare clones the agent's workspace and puts it on its own branch.
func (a *loadAgent) prepare(t *testing.T, c backends.Executor, url string) {
	t.Helper()
	backendtest.Do[*backends.CloneResult](t, c, a.p, &backends.CloneRequest{Scope: a.scope(""), URL: url})
	backendtest.Do[*backends.CheckoutResult](t, c, a.p, &backends.CheckoutRequest{Scope: a.scope(""), Branch: a.ws, Create: true})
}

// run pushes until a call fails (the service went away) and returns that
// error.
func (a *loadAgent) run(ctx context.Context, c backends.Executor) error {
	for round := 0; ; round++ {
		content := fmt.Sprintf("%s round %d\n", a.ws, round)
		if _, err := c.Execute(ctx, &backends.WriteFileRequest{Scope: a.scope(""), Path: a.ws + ".txt", Content: content}); err != nil {
			return err
		}
		if _, err := c.Execute(ctx, &backends.CommitRequest{Scope: a.scope(""), Message: content}); err != nil {
			return err
		}
		key := fmt.Sprintf("%s-push-%d", a.ws, round)
		a.lastKey.Store(key)
		if _, err := c.Execute(ctx, &backends.PushRequest{Scope: a.scope(key)}); err != nil {
			return err
		}
	}
}

func newLoadAgents(n int) []*loadAgent {
	var agents []*loadAgent
	for i := range n {
		name := fmt.Sprintf("load%d", i)
		agents = append(agents, &loadAgent{ws: name, p: backends.Principal{Project: "alpha", Agent: name,
			AuthorName: "Load Agent " + name, AuthorEmail: name + "@agents.example"}})
	}
	return agents
}

// holdPushes makes the remote hold every push after the first `free` ones
// until release is closed; held receives one value per held push.
func holdPushes(w *world, free int32) (held <-chan struct{}, release chan struct{}) {
	var arrivals atomic.Int32
	ch, rel := make(chan struct{}, 64), make(chan struct{})
	hook := func(string) {
		if arrivals.Add(1) > free {
			ch <- struct{}{}
			<-rel
		}
	}
	w.pushHook.Store(&hook)
	return ch, rel
}

// runUntilEachPushIsHeld starts the agents' load through c and returns once
// each agent has a push held at the remote (its first two pass), so that a
// fault (what) finds a push of every agent in flight. wg ends with the
// agents; closing release lets the held pushes go on.
func runUntilEachPushIsHeld(t *testing.T, w *world, c backends.Executor, agents []*loadAgent, what string) (wg *sync.WaitGroup, release chan struct{}) {
	t.Helper()
	held, release := holdPushes(w, int32(2*len(agents)))
	wg = &sync.WaitGroup{}
	stopped := make(chan error, len(agents))
	for _, a := range agents {
		wg.Go(func() { stopped <- fmt.Errorf("%s: %w", a.ws, a.run(context.WithoutCancel(t.Context()), c)) })
	}
	for range agents {
		select {
		case <-held:
		case err := <-stopped:
			t.Fatalf("an agent stopped before %s: %v", what, err)
		case <-time.After(2 * time.Minute):
			t.Fatal("the agents' pushes never reached the remote")
		}
	}
	return wg, release
}

// journalPush is a push entry as the journal holds it, with its plan.
type journalPush struct {
	ID                               int64
	Key, State, Category, Message    string
	Reconciled                       bool
	Agent, Workspace, Branch, Target string
}

func journalPushes(t *testing.T, dsn string) []journalPush {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, idem_key, state, coalesce(error_category, ''), coalesce(error_message, ''),
		reconciled, workspace, coalesce(prepared::text, '{}') FROM op_journal WHERE op = 'push' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []journalPush
	for rows.Next() {
		var e journalPush
		var prepared string
		if err := rows.Scan(&e.ID, &e.Key, &e.State, &e.Category, &e.Message, &e.Reconciled, &e.Workspace, &prepared); err != nil {
			t.Fatal(err)
		}
		var p struct {
			Agent          struct{ Agent string }
			Branch, Target string
		}
		_ = json.Unmarshal([]byte(prepared), &p)
		e.Agent, e.Branch, e.Target = p.Agent.Agent, p.Branch, p.Target
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func startedPushes(t *testing.T, dsn string) []journalPush {
	var out []journalPush
	for _, e := range journalPushes(t, dsn) {
		if e.State == "started" {
			out = append(out, e)
		}
	}
	return out
}

// remoteShows tells whether the remote's branch exists and contains commit.
func remoteShows(t *testing.T, w *world, branch, commit string) (exists, contains bool) {
	t.Helper()
	git := func(args ...string) error {
		cmd := exec.Command("/usr/bin/git", append([]string{"--git-dir=" + filepath.Join(w.remoteRoot, "demo.git")}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
		return cmd.Run()
	}
	if git("rev-parse", "--verify", "--quiet", "refs/heads/"+branch) != nil {
		return false, false
	}
	err := git("merge-base", "--is-ancestor", commit, "refs/heads/"+branch)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return true, err == nil
}

// checkSettledAsTheRemoteShows asserts, entry by entry, that every
// reconciled push is settled as what the remote shows, and that the retry
// with its key replays that; it returns a summary.
func checkSettledAsTheRemoteShows(t *testing.T, w *world, dsn string, c backends.Executor, agents []*loadAgent, moved map[string]string) string {
	t.Helper()
	byName := map[string]*loadAgent{}
	for _, a := range agents {
		byName[a.ws] = a
	}
	counts := map[string]int{}
	n := 0
	for _, e := range journalPushes(t, dsn) {
		if e.State == "started" {
			t.Errorf("entry %d (%s) is still started", e.ID, e.Key)
			continue
		}
		if !e.Reconciled {
			continue
		}
		n++
		exists, contains := remoteShows(t, w, e.Branch, e.Target)
		how := moved[e.Branch]
		switch {
		case contains && e.State == "succeeded":
			counts["succeeded, "+how]++
		case contains:
			t.Errorf("entry %d (%s): the remote branch %s contains %s, but it was settled %s: %s", e.ID, e.Key, e.Branch, e.Target, e.State, e.Message)
		case e.State != "failed" || e.Category != "conflict":
			t.Errorf("entry %d (%s): the remote branch %s (exists %v) does not contain %s, but it was settled %s/%s", e.ID, e.Key, e.Branch, exists, e.Target, e.State, e.Category)
		case !exists && !strings.Contains(e.Message, "no branch"):
			t.Errorf("entry %d (%s): branch deleted, message %q", e.ID, e.Key, e.Message)
		case exists && !strings.Contains(e.Message, "force-moved"):
			t.Errorf("entry %d (%s): branch without the commit, message %q", e.ID, e.Key, e.Message)
		default:
			counts["failed, "+how]++
		}
		a := byName[e.Workspace]
		if a == nil {
			continue
		}
		res, err := c.Execute(backendtest.Ctx(t), &backends.PushRequest{Scope: a.scope(e.Key)})
		if e.State == "succeeded" {
			if p, _ := res.(*backends.PushResult); err != nil || p.Head != e.Target {
				t.Errorf("entry %d (%s): the retry got %+v, %v; want the push of %s", e.ID, e.Key, res, err, e.Target)
			}
		} else if err == nil || backends.MessageOf(err) != e.Message {
			t.Errorf("entry %d (%s): the retry got %+v, %v; want %q", e.ID, e.Key, res, err, e.Message)
		}
	}
	if n == 0 {
		t.Error("no push was reconciled")
	}
	return fmt.Sprintf("%d reconciled pushes: %v", n, counts)
}

// blackHole listens on addr, accepts connections and never answers, as a
// remote that hangs.
func blackHole(t *testing.T, addr string) (stop func()) {
	t.Helper()
	var ln net.Listener
	testkit.EventuallyEvery(t, "the remote's port can be bound again", 50*time.Millisecond, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// restartRemote serves the world's repositories again at addr.
func restartRemote(t *testing.T, w *world, addr string) {
	t.Helper()
	w.remote = w.serveRemote(t, addr)
}

// moveBranches changes the remote as others would after the crash: on one
// branch someone pushes on top, one is force-moved back to main, one is
// deleted. It returns how each branch was moved.
func moveBranches(t *testing.T, w *world, agents []*loadAgent) map[string]string {
	t.Helper()
	git := func(args ...string) string {
		return w.remoteGit(t, append([]string{"-c", "user.name=Someone Else", "-c", "user.email=else@example.com"}, args...)...)
	}
	moved := map[string]string{}
	for i, a := range agents {
		ref := "refs/heads/" + a.ws
		switch i % 4 {
		case 0:
			tip := git("rev-parse", ref)
			next := git("commit-tree", tip+"^{tree}", "-p", tip, "-m", "someone else pushed on top")
			git("update-ref", ref, next)
			moved[a.ws] = "branch moved on since"
		case 1:
			git("update-ref", ref, git("rev-parse", "refs/heads/main"))
			moved[a.ws] = "branch force-moved"
		case 2:
			git("update-ref", "-d", ref)
			moved[a.ws] = "branch deleted"
		default:
			moved[a.ws] = "branch as the pushes left it"
		}
	}
	return moved
}

// TestKilledUnderLoadServesAtOnceAndSettlesAsTheRemoteShows: several
// agents push through the service; it is killed (SIGKILL) with a push of
// each in flight, the pushes land or not, and the branches are then moved
// on, force-moved or deleted by others. The restarted service serves a read
// and a write on an unaffected workspace while its reconciliation is still
// held up (the remote hangs), a write to an affected workspace waits, and
// once the remote answers every interrupted push is settled as what the
// remote shows, entry by entry, and its retry replays that.
func TestKilledUnderLoadServesAtOnceAndSettlesAsTheRemoteShows(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir() // kept across the restart
	addr, proc := w.startBackend(t)
	c, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	agents := newLoadAgents(8)
	calm := &loadAgent{ws: "calm", p: backends.Principal{Project: "alpha", Agent: "calm", AuthorName: "Calm", AuthorEmail: "calm@agents.example"}}
	calm.prepare(t, c, w.repoURL)
	for _, a := range agents {
		a.prepare(t, c, w.repoURL)
	}

	// Each agent's first two pushes pass; every later one is held at the
	// remote, so that at the kill a push of every agent is in flight.
	wg, release := runUntilEachPushIsHeld(t, w, c, agents, "the kill")
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.backendWait()
	wg.Wait()
	close(release) // the orphaned pushes may land now
	remoteAddr := strings.TrimPrefix(w.remote.URL(), "http://")
	if err := w.remote.Close(); err != nil { // waits for the pushes in flight
		t.Fatal(err)
	}
	w.pushHook.Store(nil)
	moved := moveBranches(t, w, agents)
	interrupted := startedPushes(t, w.pgDSN)
	if len(interrupted) != len(agents) {
		t.Fatalf("%d pushes left started by the kill, want %d", len(interrupted), len(agents))
	}

	// Restart while the remote hangs: reconciliation cannot finish.
	stopHole := blackHole(t, remoteAddr)
	began := time.Now()
	addr, _ = w.startBackend(t)
	c2, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	backendtest.Do[*backends.StatusResult](t, c2, calm.p, &backends.StatusRequest{Scope: calm.scope("")})
	firstRead := time.Since(began)
	backendtest.Do[*backends.WriteFileResult](t, c2, calm.p, &backends.WriteFileRequest{Scope: calm.scope(""), Path: "calm.txt", Content: "calm\n"})
	backendtest.Do[*backends.CommitResult](t, c2, calm.p, &backends.CommitRequest{Scope: calm.scope("calm-commit"), Message: "served during recovery"})
	firstWrite := time.Since(began)
	if left := startedPushes(t, w.pgDSN); len(left) != len(interrupted) {
		t.Fatalf("%d of %d interrupted pushes settled before the remote answered", len(interrupted)-len(left), len(interrupted))
	}
	// A same-key retry of an interrupted push waits for its entry.
	a0 := agents[0]
	short, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	_, err = c2.Execute(short, &backends.PushRequest{Scope: a0.scope(a0.lastKey.Load().(string))})
	cancel()
	if err == nil {
		t.Fatal("the retry of an interrupted push was answered before its entry was settled")
	}
	t.Logf("after the restart: first read served %s and first write %s after the process started, with %d interrupted pushes still unsettled",
		firstRead.Round(time.Millisecond), firstWrite.Round(time.Millisecond), len(interrupted))

	stopHole()
	restartRemote(t, w, remoteAddr)
	settleBegan := time.Now()
	testkit.EventuallyNil(t, "every interrupted push settled", func() error {
		if left := startedPushes(t, w.pgDSN); len(left) > 0 {
			return fmt.Errorf("still started: %+v", left)
		}
		return nil
	})
	t.Logf("every interrupted push settled %s after the remote answered again", time.Since(settleBegan).Round(time.Millisecond))
	t.Log(checkSettledAsTheRemoteShows(t, w, w.pgDSN, c2, agents, moved))
	if n := w.remote.Pushes("demo"); n != 0 {
		t.Errorf("the retries pushed %d times; they must replay", n)
	}
}

// tcpProxy forwards a loopback port to target; cut drops the port and
// every connection, restore listens on the same port again.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	var ln net.Listener
	testkit.EventuallyEvery(t, "the proxy's port can be bound again", 50*time.Millisecond, func() bool {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	})
	p.serve(ln)
}

// TestPostgresCutUnderLoadSettlesAsTheRemoteShows: several agents push
// through the service; PostgreSQL is cut (a proxy drops every connection)
// while a push of each is in flight, so that the pushes land but cannot be
// settled; others then move the branches on, force-move or delete them.
// Once PostgreSQL is back, every push left started is settled as what the
// remote shows, entry by entry, and its retry replays that.
func TestPostgresCutUnderLoadSettlesAsTheRemoteShows(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	direct := backendtest.PostgresDSN(t)
	proxy := startProxy(t, "127.0.0.1:5432")
	w.pgDSN = strings.Replace(direct, "127.0.0.1:5432", proxy.addr, 1)
	if w.pgDSN == direct {
		t.Skip("the test DSN does not name 127.0.0.1:5432")
	}
	addr, _ := w.startBackend(t)
	c, err := approach2.Dial(addr, approach2.ClientConfig{Token: serviceToken, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	agents := newLoadAgents(8)
	for _, a := range agents {
		a.prepare(t, c, w.repoURL)
	}
	wg, release := runUntilEachPushIsHeld(t, w, c, agents, "the cut")
	proxy.cut()
	close(release) // the pushes land; their journal entries cannot be settled
	wg.Wait()      // each agent stops at its next write: the journal is gone
	w.pushHook.Store(nil)
	interrupted := startedPushes(t, direct)
	if len(interrupted) != len(agents) {
		t.Fatalf("%d pushes left started by the cut, want %d", len(interrupted), len(agents))
	}
	moved := moveBranches(t, w, agents)
	proxy.restore(t)
	began := time.Now()
	testkit.EventuallyNil(t, "every interrupted push settled", func() error {
		if left := startedPushes(t, direct); len(left) > 0 {
			return fmt.Errorf("still started: %+v", left)
		}
		return nil
	})
	t.Logf("every push left started by the cut settled %s after PostgreSQL came back", time.Since(began).Round(time.Millisecond))
	pushes := w.remote.Pushes("demo")
	t.Log(checkSettledAsTheRemoteShows(t, w, direct, c, agents, moved))
	if n := w.remote.Pushes("demo") - pushes; n != 0 {
		t.Errorf("the retries pushed %d times; they must replay", n)
	}
}
