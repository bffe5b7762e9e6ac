package mcpserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/redact"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"
)

// replicaFleet is gateway replicas sharing sessions through Redis behind a
// round-robin reverse proxy on loopback (the load balancer).
type replicaFleet struct {
	t      *testing.T
	redis  func() redis.UniversalClient // a new client per replica, as separate processes have
	prefix string
	dir    *gateway.Directory
	logs   *testkit.SyncBuffer
	proxy  *httptest.Server

	mu       sync.Mutex
	replicas []*replica
	next     int
	served   []string // which replica each proxied request went to
}

// replica is one gateway's MCP endpoint.
type replica struct {
	name   string
	url    string // of its MCP endpoint, for requests that bypass the proxy
	calls  atomic.Int64
	server *Server
	stop   func()
}

func newReplicaFleet(t *testing.T, newRedis func() redis.UniversalClient, prefix string, n int) *replicaFleet {
	t.Helper()
	dir, err := gateway.NewDirectory([]gateway.Agent{
		{Name: "ada", Project: "p", TokenSHA256: gateway.HashToken(adaToken), AuthorName: "Ada", AuthorEmail: "ada@x"},
		{Name: "eve", Project: "q", TokenSHA256: gateway.HashToken(eveToken), AuthorName: "Eve", AuthorEmail: "eve@x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &replicaFleet{t: t, redis: newRedis, prefix: prefix, dir: dir, logs: &testkit.SyncBuffer{}}
	f.proxy = httptest.NewServer(http.HandlerFunc(f.forward))
	t.Cleanup(f.proxy.Close)
	for i := range n {
		f.replicas = append(f.replicas, f.start(string(rune('a'+i))))
	}
	t.Cleanup(func() {
		for _, tok := range []string{adaToken, eveToken} {
			if strings.Contains(f.logs.String(), tok) {
				t.Errorf("a bearer token appears in the logs")
			}
		}
	})
	return f
}

// start starts a replica named name.
func (f *replicaFleet) start(name string) *replica {
	t := f.t
	t.Helper()
	r := &replica{name: name}
	srv := httptest.NewUnstartedServer(nil)
	rdb := f.redis()
	ex := backends.ExecutorFunc(func(_ context.Context, req backends.Request) (backends.Result, error) {
		r.calls.Add(1)
		return backends.NewResult(req.Op()), nil
	})
	red := redact.New(secret)
	s, err := New(Config{Executor: ex, Redactor: red, Directory: f.dir,
		Logger: slog.New(red.Handler(slog.NewTextHandler(f.logs, nil))).With("replica", name),
		HTTP: HTTPConfig{AllowedHosts: []string{srv.Listener.Addr().String(), f.proxy.Listener.Addr().String()},
			SessionRedis: rdb, SessionKeyPrefix: f.prefix}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.HTTPHandler()
	srv.Start()
	r.url, r.server = srv.URL+"/mcp", s
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			srv.Close()
			s.Close(context.WithoutCancel(t.Context()))
			_ = rdb.Close()
		})
	}
	t.Cleanup(r.stop)
	return r
}

// forward sends each request to the next replica in turn, keeping the
// Host header (a load balancer's), streaming responses as they come.
func (f *replicaFleet) forward(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	r := f.replicas[f.next%len(f.replicas)]
	f.next++
	f.served = append(f.served, r.name)
	f.mu.Unlock()
	target, _ := url.Parse(r.url)
	p := &httputil.ReverseProxy{FlushInterval: -1, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path = target.Path
		pr.Out.Host = pr.In.Host
	}}
	p.ServeHTTP(w, req)
}

// replace stops replica i and puts a new one with the same name in its
// place behind the proxy: a restart.
func (f *replicaFleet) replace(i int) *replica {
	f.mu.Lock()
	old := f.replicas[i]
	f.mu.Unlock()
	old.stop()
	r := f.start(old.name + "'")
	f.mu.Lock()
	f.replicas[i] = r
	f.mu.Unlock()
	return r
}

// servedBy returns which replica served the proxied requests since the
// last call.
func (f *replicaFleet) servedBy() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.served
	f.served = nil
	return out
}

// client starts an MCP client of the proxy as ada, speaking the last
// protocol version with sessions (2025-11-25) unless version says
// otherwise.
func (f *replicaFleet) client(t *testing.T, version string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(f.proxy.URL+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + adaToken}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "replicas", Version: "1"}
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

// callStatus calls the status tool and fails the test unless it succeeds.
func callStatus(t *testing.T, c *client.Client) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = "status"
	req.Params.Arguments = map[string]any{"workspace": "w"}
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	if res.IsError {
		t.Fatalf("tools/call: error result %v", res.Content)
	}
}

// raw sends one request straight to an endpoint (bypassing the proxy) and
// returns the status and the body.
func raw(t *testing.T, endpoint, method, token, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawInitialize opens a session as token's agent on one replica.
func rawInitialize(t *testing.T, endpoint, token string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(initializeBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize on %s: %d, session %q", endpoint, resp.StatusCode, id)
	}
	return id
}

func sharedRedis(t *testing.T) (func() redis.UniversalClient, string) {
	t.Helper()
	rdb := backendtest.Redis(t)
	return func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	}, backendtest.RedisPrefix(t, rdb)
}

// TestSessionWorksOnEveryReplica: a real MCP client behind a round-robin
// load balancer initializes on one replica and lists tools and calls tools
// on both, all succeeding; another agent's token with that session id gets
// 404 on both replicas; a DELETE on one replica ends the session on the
// other. A client of the sessionless protocol version (2026-07-28) works
// through the same balancer.
func TestSessionWorksOnEveryReplica(t *testing.T) {
	newRedis, prefix := sharedRedis(t)
	f := newReplicaFleet(t, newRedis, prefix, 2)
	c := f.client(t, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	session := c.GetSessionId()
	if session == "" {
		t.Fatal("the client has no session")
	}
	tools, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil || len(tools.Tools) == 0 {
		t.Fatalf("tools/list: %v (%d tools)", err, len(tools.Tools))
	}
	for range 6 {
		callStatus(t, c)
	}
	a, b := f.replicas[0], f.replicas[1]
	t.Logf("requests served by %v; tool calls a %d, b %d", f.servedBy(), a.calls.Load(), b.calls.Load())
	if a.calls.Load() == 0 || b.calls.Load() == 0 || a.calls.Load()+b.calls.Load() != 6 {
		t.Errorf("tool calls served: a %d, b %d; want 6 spread over both", a.calls.Load(), b.calls.Load())
	}

	for _, r := range f.replicas {
		for _, method := range []string{http.MethodPost, http.MethodDelete} {
			if code, _ := raw(t, r.url, method, eveToken, session, toolsListBody); code != http.StatusNotFound {
				t.Errorf("eve %s with ada's session on %s: %d, want 404", method, r.name, code)
			}
		}
		if code, body := raw(t, r.url, http.MethodPost, adaToken, session, toolsListBody); code != http.StatusOK {
			t.Errorf("ada's tools/list on %s after eve's attempts: %d %s", r.name, code, body)
		}
	}

	if code, _ := raw(t, a.url, http.MethodDelete, adaToken, session, ""); code != http.StatusOK {
		t.Fatalf("DELETE on a: %d", code)
	}
	for _, r := range f.replicas {
		if code, _ := raw(t, r.url, http.MethodPost, adaToken, session, toolsListBody); code != http.StatusNotFound {
			t.Errorf("the deleted session on %s: %d, want 404", r.name, code)
		}
	}

	modern := f.client(t, mcp.LATEST_PROTOCOL_VERSION)
	if modern.GetSessionId() != "" {
		t.Errorf("a 2026-07-28 client got session %q", modern.GetSessionId())
	}
	for range 2 {
		callStatus(t, modern)
	}
}

// TestSessionOutlivesTheReplicaThatOpenedIt: the replica that served the
// initialize stops (its shutdown ends its sessions only for itself) and a
// new one takes its place; the client's next calls, on both replicas,
// succeed without a new initialize.
func TestSessionOutlivesTheReplicaThatOpenedIt(t *testing.T) {
	newRedis, prefix := sharedRedis(t)
	f := newReplicaFleet(t, newRedis, prefix, 2)
	f.servedBy()
	c := f.client(t, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	session := c.GetSessionId()
	opener := f.servedBy()[0] // the initialize
	i := map[string]int{"a": 0, "b": 1}[opener]
	callStatus(t, c)
	fresh := f.replace(i)
	for range 4 {
		callStatus(t, c)
	}
	if c.GetSessionId() != session {
		t.Errorf("the client's session changed from %q to %q", session, c.GetSessionId())
	}
	if fresh.calls.Load() == 0 {
		t.Errorf("the restarted replica %s served none of the calls", fresh.name)
	}
	if code, body := raw(t, fresh.url, http.MethodPost, adaToken, session, toolsListBody); code != http.StatusOK {
		t.Errorf("the session on the restarted replica: %d %s", code, body)
	}
}

// switchableProxy forwards TCP connections to a target until it is set
// down: then it closes every open connection and closes new ones at once,
// which to a client is the service stopped; set up again, it forwards
// again. What is behind it (a redis-server) keeps its data, as a Redis
// keeps it through a network fault or a Sentinel failover.
type switchableProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newSwitchableProxy(t *testing.T, target string) *switchableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchableProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *switchableProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{in, out}, {out, in}} {
			p.wg.Go(func() {
				_, _ = io.Copy(pair[0], pair[1])
				_ = pair[0].Close()
				_ = pair[1].Close()
				p.mu.Lock()
				delete(p.conns, pair[0])
				delete(p.conns, pair[1])
				p.mu.Unlock()
			})
		}
	}
}

func (p *switchableProxy) setDown(down bool) {
	p.down.Store(down)
	if down {
		p.mu.Lock()
		defer p.mu.Unlock()
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// TestSessionsWhileRedisIsDown: with Redis unreachable, a replica keeps
// serving the sessions it opened or saw in use (still bound to their
// agent), answers 503 "unavailable" (not 404) for a session it cannot
// check and for an initialize, and takes a DELETE, which reaches Redis
// once it is back; then every session works on every replica again. A
// Redis that comes back empty is believed over the caches: its sessions
// get 404 and a new initialize works.
func TestSessionsWhileRedisIsDown(t *testing.T) {
	server := backendtest.StartRedis(t)
	link := newSwitchableProxy(t, server.Addr)
	f := newReplicaFleet(t, func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: link.ln.Addr().String()})
	}, "gitgate-test:", 2)
	a, b := f.replicas[0], f.replicas[1]
	known := rawInitialize(t, a.url, adaToken)   // a opened it: in a's cache
	seenOnB := rawInitialize(t, a.url, adaToken) // used on b: in b's cache too
	if code, _ := raw(t, b.url, http.MethodPost, adaToken, seenOnB, toolsListBody); code != http.StatusOK {
		t.Fatalf("a's session on b: %d", code)
	}
	doomed := rawInitialize(t, a.url, adaToken) // deleted on a during the outage

	link.setDown(true)
	for _, tc := range []struct {
		name    string
		r       *replica
		session string
	}{{"a's own session on a", a, known}, {"a session b saw, on b", b, seenOnB}} {
		if code, body := raw(t, tc.r.url, http.MethodPost, adaToken, tc.session, toolsListBody); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200 from the replica's cache", tc.name, code, body)
		}
	}
	if code, _ := raw(t, a.url, http.MethodPost, eveToken, known, toolsListBody); code != http.StatusNotFound {
		t.Errorf("eve with ada's cached session: %d, want 404", code)
	}
	code, body := raw(t, b.url, http.MethodPost, adaToken, known, toolsListBody)
	assertUnavailable(t, "a session b never saw, on b", code, body)
	code, body = raw(t, a.url, http.MethodPost, adaToken, "", initializeBody)
	assertUnavailable(t, "initialize", code, body)
	if code, _ := raw(t, a.url, http.MethodDelete, adaToken, doomed, ""); code != http.StatusOK {
		t.Errorf("DELETE during the outage: %d", code)
	}
	if code, _ := raw(t, a.url, http.MethodPost, adaToken, doomed, toolsListBody); code != http.StatusNotFound {
		t.Errorf("the session deleted on a, on a: %d, want 404", code)
	}
	if n := strings.Count(f.logs.String(), "Redis unreachable"); n != 2 {
		t.Errorf("%d log lines say Redis is unreachable, want one per replica:\n%s", n, f.logs)
	}

	link.setDown(false)
	testkit.Eventually(t, "b checks a's session in Redis again", func() bool {
		code, _ := raw(t, b.url, http.MethodPost, adaToken, known, toolsListBody)
		return code == http.StatusOK
	})
	// a's first call that reaches Redis (an initialize needs it) replays
	// the DELETE.
	testkit.Eventually(t, "a opens sessions again", func() bool {
		code, _ := raw(t, a.url, http.MethodPost, adaToken, "", initializeBody)
		return code == http.StatusOK
	})
	if code, _ := raw(t, b.url, http.MethodPost, adaToken, doomed, toolsListBody); code != http.StatusNotFound {
		t.Errorf("the session deleted during the outage, on b: %d, want 404", code)
	}
	fresh := rawInitialize(t, b.url, adaToken)
	if code, _ := raw(t, a.url, http.MethodPost, adaToken, fresh, toolsListBody); code != http.StatusOK {
		t.Errorf("a session opened after the outage, on a: %d", code)
	}

	server.Restart() // no persistence: Redis comes back empty
	testkit.Eventually(t, "a hears from the empty Redis", func() bool {
		code, _ := raw(t, a.url, http.MethodPost, adaToken, known, toolsListBody)
		return code == http.StatusNotFound
	})
	again := rawInitialize(t, a.url, adaToken)
	if code, _ := raw(t, b.url, http.MethodPost, adaToken, again, toolsListBody); code != http.StatusOK {
		t.Errorf("a new session after Redis lost its data: %d", code)
	}
}

// assertUnavailable checks a 503 with the JSON error category unavailable.
func assertUnavailable(t *testing.T, what string, code int, body string) {
	t.Helper()
	var got map[string]string
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &got) != nil || got["error"] != "unavailable" {
		t.Errorf("%s: %d %s, want 503 with error unavailable", what, code, body)
	}
}

// TestSessionsThroughASentinelFailover: replicas on a Redis Sentinel set
// (go-redis' failover client) keep serving a session while its master
// fails over, every call succeeding, and the session is in the new master
// afterwards: a replica that never saw it accepts it.
func TestSessionsThroughASentinelFailover(t *testing.T) {
	set := backendtest.StartSentinel(t)
	newRedis := func() redis.UniversalClient {
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: set.MasterName, SentinelAddrs: set.Addrs})
	}
	f := newReplicaFleet(t, newRedis, "gitgate-test:", 2)
	c := f.client(t, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	for range 4 { // both replicas see the session
		callStatus(t, c)
	}
	rdb := newRedis()
	defer func() { _ = rdb.Close() }()
	if n, err := rdb.Do(t.Context(), "WAIT", 1, 10000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d %v", n, err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := set.Failover(context.WithoutCancel(t.Context()))
		done <- err
	}()
	calls := 0
	for failing := true; failing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			failing = false
		default:
		}
		callStatus(t, c)
		calls++
	}
	for range 4 {
		callStatus(t, c)
	}
	t.Logf("%d calls while the master failed over, all served; replicas that lost Redis for a while: %d",
		calls, strings.Count(f.logs.String(), "Redis unreachable"))
	newcomer := f.start("c")
	if code, body := raw(t, newcomer.url, http.MethodPost, adaToken, c.GetSessionId(), toolsListBody); code != http.StatusOK {
		t.Errorf("the session on a replica that never saw it, after the failover: %d %s", code, body)
	}

	// The master hangs (SIGSTOP): Redis calls time out until the
	// sentinels notice and promote the replica; the replicas serve the
	// session from their caches meanwhile.
	master, err := set.Master(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Do(t.Context(), "WAIT", 1, 10000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d %v", n, err)
	}
	resume := set.Pause(master)
	defer resume()
	calls = 0
	testkit.EventuallyEvery(t, "the sentinels promote the replica (and 4 calls are made)", time.Millisecond, func() bool {
		callStatus(t, c)
		calls++
		now, err := set.Master(t.Context())
		return err == nil && now != master && calls >= 4
	})
	for range 4 {
		callStatus(t, c)
	}
	t.Logf("%d calls while the master hung, all served; replicas that lost Redis for a while: %d",
		calls, strings.Count(f.logs.String(), "Redis unreachable"))
	if !strings.Contains(f.logs.String(), "Redis unreachable") {
		t.Error("no replica lost Redis while its master hung: the caches were not tested")
	}
	if code, body := raw(t, f.start("d").url, http.MethodPost, adaToken, c.GetSessionId(), toolsListBody); code != http.StatusOK {
		t.Errorf("the session on a new replica after the hung master was replaced: %d %s", code, body)
	}
}
