package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

type callRecord struct {
	start   time.Time
	backend string
	err     string
}

// TestKillSwitchUnderLoad: with every operation on Approach 2 and 32 agents
// working, `gitgate kill on` makes every call started after the gateway
// applied the switch go to Approach 1, and none fails because of the
// switch; with the flag file deleted, the admin listener's override keeps
// it engaged. (How soon the gateway applies it is a timing property,
// logged here and not asserted: a loaded machine only delays it.)
func TestKillSwitchUnderLoad(t *testing.T) {
	all := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		_ = all.SetRoute(op, 100)
	}
	w, flagPath, _ := newCanaryWorld(t, all, withAdminToken)
	setup := w.httpClient(t, agentToken)
	if got := w.ok(t, setup, "clone", map[string]any{"workspace": "k", "url": w.repoURL})["backend"]; got != "approach2" {
		t.Fatalf("at 100%% clone went to %v", got)
	}

	var mu sync.Mutex
	var records []callRecord
	count := func(match func(callRecord) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range records {
			if match(r) {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newLoadClient(t, w.mcpURL, agentToken)
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				backend, err := c.backendOf(t, "status", `{"workspace":"k"}`)
				mu.Lock()
				records = append(records, callRecord{start: start, backend: backend, err: err})
				mu.Unlock()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	testkit.Eventually(t, "32 calls under load are served by approach2", func() bool {
		return count(func(r callRecord) bool { return r.backend == "approach2" }) >= 32
	})
	killed := time.Now()
	wantCLI(t, runGitgate(t, "", "kill", "on", "--file", flagPath, "--by", "oncall", "--reason", "drill under load"),
		printed("kill switch on (by oncall: drill under load)\n"))
	// applied is when the test saw the gateway's flags engage the switch:
	// no later than the moment they did, so a call started after it must
	// go to Approach 1.
	var applied time.Time
	testkit.Eventually(t, "the gateway applies the kill switch", func() bool {
		if w.app.flags.Decide(t.Context(), "status", "alpha/k").Killed {
			applied = time.Now()
			return true
		}
		return false
	})
	testkit.Eventually(t, "64 calls start after the switch was applied", func() bool {
		return count(func(r callRecord) bool { return r.start.After(applied) }) >= 64
	})
	stopLoad()
	var before, after, failed int
	for _, r := range records {
		if r.err != "" {
			failed++
			t.Errorf("call failed: %s", r.err)
		}
		if r.start.After(applied) {
			after++
			if r.backend != "approach1" {
				t.Errorf("a call started %s after the switch was applied went to %s", r.start.Sub(applied), r.backend)
			}
		} else if r.start.Before(killed) && r.backend == "approach2" {
			before++
		}
	}
	t.Logf("%d calls: %d on approach2 before the switch, %d checked after it; applied %s after the command; %d failed",
		len(records), before, after, applied.Sub(killed).Round(time.Millisecond), failed)
	if before == 0 || after == 0 {
		t.Fatalf("the load did not straddle the switch (%d before, %d after)", before, after)
	}

	// The flag system gone: the override keeps everything on Approach 1.
	body, _ := json.Marshal(map[string]any{"kill": true, "by": "oncall", "reason": "flags broken"})
	req, _ := http.NewRequest(http.MethodPost, w.adminURL+"/kill", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("override: %v %v", err, resp)
	}
	resp.Body.Close()
	_ = os.Remove(flagPath)
	c := newLoadClient(t, w.mcpURL, agentToken)
	for i := range 20 {
		if b, err := c.backendOf(t, "status", `{"workspace":"k"}`); err != "" || b != "approach1" {
			t.Fatalf("call %d with the flag file deleted: %s %s", i, b, err)
		}
	}

}

// newCanaryWorld is a gateway routing by the flag file f (saved to a temp
// path, returned) to Approach 1 in process and to a gitgate backend child,
// the two sharing Redis and the sandbox directory. The backend child's
// process is returned for tests that kill it. tune, if any, adjusts the
// gateway's configuration before it starts.
func newCanaryWorld(t testing.TB, f *flags.File, tune ...func(*configs.Config)) (w *world, flagPath string, backend *os.Process) {
	t.Helper()
	return newCanaryWorldWith(t, f, nil, tune...)
}

// newCanaryWorldWith is newCanaryWorld with prepare, if set, adjusting the
// world before any configuration is written.
func newCanaryWorldWith(t testing.TB, f *flags.File, prepare func(*world), tune ...func(*configs.Config)) (w *world, flagPath string, backend *os.Process) {
	t.Helper()
	w = newWorld(t)
	if prepare != nil {
		prepare(w)
	}
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	w.sharedSandboxes = t.TempDir()
	w.cfg = w.config(t)
	addr, proc := w.startBackend(t)
	flagPath = filepath.Join(t.TempDir(), "flags.json")
	if err := f.Save(flagPath); err != nil {
		t.Fatal(err)
	}
	w.cfg.Flags.Path = flagPath
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix
	w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	if _, bench := t.(*testing.B); !bench {
		// Shadows run at the lowest CPU priority: on a loaded machine they
		// may take long, which only makes a test slower.
		w.cfg.Canary.ShadowBudget = testkit.Patience
	}
	for _, f := range tune {
		f(w.cfg)
	}
	w.startHTTP(t)
	return w, flagPath, proc
}

// TestAdminTokenGuardsTheOverride: with listen.admin_token_sha256 set, the
// override cannot be set or cleared without the token (and stays as it
// was), `gitgate kill --admin` sends it from GITGATE_ADMIN_TOKEN, and the
// token appears in no log.
func TestAdminTokenGuardsTheOverride(t *testing.T) {
	const adminToken = "adm-4f1c9e-not-for-agents"
	w, flagPath, _ := newCanaryWorld(t, flags.NewFile(backends.OpNames()), func(c *configs.Config) {
		c.Listen.AdminTokenSHA256 = gateway.HashToken(adminToken)
	})
	override := func() map[string]any {
		_, body := get(t, w.adminURL+"/kill")
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("GET /kill: %v %s", err, body)
		}
		return v
	}
	body, _ := json.Marshal(map[string]any{"kill": true, "by": "mallory", "reason": "no token"})
	for _, auth := range []string{"", "Bearer wrong-token", adminToken} {
		req, _ := http.NewRequest(http.MethodPost, w.adminURL+"/kill", bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST /kill with Authorization %q: %v %v, want 401", auth, err, resp)
		}
		resp.Body.Close()
	}
	if v := override(); v["override"] != false {
		t.Fatalf("the override changed without the token: %v", v)
	}
	kill := func(onOff string) cliResult {
		return runGitgate(t, "", "kill", onOff, "--file", flagPath, "--by", "oncall", "--reason", "token test", "--admin", w.adminURL)
	}
	t.Setenv("GITGATE_ADMIN_TOKEN", "")
	wantCLI(t, kill("on"), cliResult{Stdout: "kill switch on (by oncall: token test)\n", Stderr: "gitgate: " + w.adminURL +
		": 401 Unauthorized: changing the kill switch needs the admin token (Authorization: Bearer ...)\n", Code: 1})
	t.Setenv("GITGATE_ADMIN_TOKEN", adminToken)
	wantCLI(t, kill("on"), printed("kill switch on (by oncall: token test)\noverride on on "+w.adminURL+"\n"+
		"kill switch on "+w.adminURL+": ON (everything on approach1); in the flags: ON; admin override: kill ON, set by oncall at $TIME: token test\n"))
	if v := override(); v["override"] != true || v["kill"] != true || v["by"] != "oncall" {
		t.Fatalf("override after kill on with the token: %v", v)
	}
	wantCLI(t, kill("off"), printed("kill switch off (by oncall: token test)\noverride off on "+w.adminURL+"\n"+
		"kill switch on "+w.adminURL+": off; in the flags: off; admin override: none\n"))
	if v := override(); v["override"] != false {
		t.Fatalf("override after kill off: %v", v)
	}
	if strings.Contains(w.logs.String(), adminToken) {
		t.Fatal("the admin token is in the logs")
	}
}
