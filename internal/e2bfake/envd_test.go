package e2bfake

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// These check that the fake behaves as envd 0.6.13 does where gitgate
// once assumed otherwise (packages/envd/internal/services/process in
// e2b-dev/infra): envd kills only the process it started, never its
// children; a client that goes away stops nothing; commands get envd's
// environment and the template's; uploads are 0644; unknown users are
// refused.

func unaryCall(t *testing.T, s *Server, id, token, method, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/process.Process/"+method, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("E2b-Sandbox-Id", id)
	req.Header.Set("E2b-Sandbox-Port", "49983")
	req.Header.Set("X-Access-Token", token)
	resp, out := do(t, req)
	return resp.StatusCode, string(out)
}

// listed returns the tags envd lists.
func listed(t *testing.T, s *Server, id, token string) []string {
	t.Helper()
	status, body := unaryCall(t, s, id, token, "List", `{}`)
	var out struct {
		Processes []struct {
			Pid uint32 `json:"pid"`
			Tag string `json:"tag"`
		} `json:"processes"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("List: %d %s", status, body)
	}
	var tags []string
	for _, p := range out.Processes {
		tags = append(tags, p.Tag)
	}
	return tags
}

// withMark counts the live processes whose environment holds mark.
func withMark(mark string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] != "Z" && slices.Contains(strings.Split(string(env), "\x00"), mark) {
			n++
		}
	}
	return n
}

// startTagged starts a command with a tag and returns once its start event
// arrived, with the open stream.
func startTagged(t *testing.T, s *Server, id, token, tag, script, mark string, timeoutMs int) *http.Response {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"process": map[string]any{"cmd": "/bin/sh", "args": []string{"-c", script},
		"envs": map[string]string{strings.SplitN(mark, "=", 2)[0]: strings.SplitN(mark, "=", 2)[1]}}, "tag": tag, "stdin": false})
	req := rawStart(s, id, token, "application/connect+json", string(msg))
	if timeoutMs > 0 {
		req.Header.Set("Connect-Timeout-Ms", strconv.Itoa(timeoutMs))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var head [5]byte
	if _, err := io.ReadFull(resp.Body, head[:]); err != nil {
		t.Fatal(err)
	}
	ev := make([]byte, binary.BigEndian.Uint32(head[1:]))
	if _, err := io.ReadFull(resp.Body, ev); err != nil || !strings.Contains(string(ev), `"start"`) {
		t.Fatalf("first event %q, %v", ev, err)
	}
	return resp
}

func TestEnvdKillsOnlyTheProcessItStarted(t *testing.T) {
	s := start(t, Config{})
	id, token := create(t, s)
	script := `sh -c 'sleep 600' & sleep 600`

	// A client that goes away stops nothing.
	mark := "MARK=gone-client-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	resp := startTagged(t, s, id, token, "t1", script, mark, 0)
	resp.Body.Close()
	testkit.Eventually(t, "the command's processes run", func() bool { return withMark(mark) >= 2 })
	if tags := listed(t, s, id, token); !slices.Contains(tags, "t1") {
		t.Fatalf("listed %q", tags)
	}
	// SendSignal reaches the started process only, selected by tag.
	if status, body := unaryCall(t, s, id, token, "SendSignal", `{"process":{"tag":"t1"},"signal":"SIGNAL_SIGKILL"}`); status != 200 {
		t.Fatalf("SendSignal: %d %s", status, body)
	}
	testkit.Eventually(t, "the started process is reaped", func() bool { return !slices.Contains(listed(t, s, id, token), "t1") })
	if withMark(mark) == 0 {
		t.Fatal("SIGKILL to the started process killed its children too")
	}
	if status, body := unaryCall(t, s, id, token, "SendSignal", `{"process":{"tag":"t1"},"signal":"SIGNAL_SIGTERM"}`); status != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("SendSignal to a process that is gone: %d %s", status, body)
	}

	// The Connect deadline kills the started process, not its children.
	mark2 := "MARK=deadline-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	resp = startTagged(t, s, id, token, "t2", script, mark2, 300)
	rest, _ := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if !strings.Contains(string(rest), `"deadline_exceeded"`) {
		t.Fatalf("stream after the deadline: %q", rest)
	}
	testkit.Eventually(t, "the started process is reaped", func() bool { return !slices.Contains(listed(t, s, id, token), "t2") })
	if withMark(mark2) == 0 {
		t.Fatal("the deadline killed the started process's children too")
	}

	// The sandbox's end ends them all.
	if status, _ := func() (int, []byte) {
		req, _ := http.NewRequest("DELETE", s.URL()+"/sandboxes/"+id, nil)
		req.Header.Set("X-API-Key", "key-0123456789")
		resp, b := do(t, req)
		return resp.StatusCode, b
	}(); status != 204 {
		t.Fatalf("kill: %d", status)
	}
	testkit.Eventually(t, "no process of the sandbox is left", func() bool { return withMark(mark)+withMark(mark2) == 0 })
}

func TestEnvdEnvironmentAndUploads(t *testing.T) {
	s := start(t, Config{InitEnv: map[string]string{"GIT_DIR": "/trap"}, Domain: "eu.example"})
	id, token := create(t, s)
	_, body := do(t, rawStart(s, id, token, "application/connect+json", `{"process":{"cmd":"/usr/bin/env","envs":{"A":"1"}}}`))
	var out strings.Builder
	for _, f := range frames(t, body) {
		var ev struct {
			Event struct {
				Data *struct {
					Stdout []byte `json:"stdout"`
				} `json:"data"`
			} `json:"event"`
		}
		if json.Unmarshal([]byte(f.msg), &ev) == nil && ev.Event.Data != nil {
			out.Write(ev.Event.Data.Stdout)
		}
	}
	env := strings.Split(out.String(), "\n")
	for _, want := range []string{"A=1", "GIT_DIR=/trap", "E2B_SANDBOX_ID=" + id, "USER=user", "LOGNAME=user", "HOME=/home/user"} {
		if !slices.Contains(env, want) {
			t.Errorf("%s not in the environment %q", want, env)
		}
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		t.Errorf("no PATH in %q", env)
	}

	// Uploads are created 0644; an unknown username is 401.
	upload := func(user string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", s.URL()+"/files?path=/home/user/up.txt&username="+user, strings.NewReader("x"))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Access-Token", token)
		req.Header.Set("E2b-Sandbox-Id", id)
		req.Header.Set("E2b-Sandbox-Port", "49983")
		return do(t, req)
	}
	if resp, body := upload("user"); resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	st, err := os.Stat(filepath.Join(s.Root(), id, "up.txt"))
	if err != nil || st.Mode().Perm()&0o044 == 0 {
		t.Fatalf("upload mode %v, %v: want readable by others (0666 less the umask)", st.Mode(), err)
	}
	if resp, body := upload("mallory"); resp.StatusCode != 401 || !strings.Contains(string(body), "error looking up user 'mallory'") {
		t.Fatalf("unknown user: %d %s", resp.StatusCode, body)
	}
	// Processes: an unknown user is unauthenticated, also for unary calls.
	req, _ := http.NewRequest("POST", s.URL()+"/process.Process/List", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("E2b-Sandbox-Id", id)
	req.Header.Set("E2b-Sandbox-Port", "49983")
	req.Header.Set("X-Access-Token", token)
	req.Header.Set("Authorization", "Basic bWFsbG9yeTo=") // mallory:
	if resp, body := do(t, req); resp.StatusCode != 401 || !strings.Contains(string(body), `"code":"unauthenticated"`) || !strings.Contains(string(body), "invalid username: 'mallory'") {
		t.Fatalf("List as an unknown user: %d %s", resp.StatusCode, body)
	}
	// The API names the sandbox's domain.
	req, _ = http.NewRequest("GET", s.URL()+"/sandboxes/"+id, nil)
	req.Header.Set("X-API-Key", "key-0123456789")
	if _, body := do(t, req); !strings.Contains(string(body), `"domain":"eu.example"`) {
		t.Fatalf("get: %s", body)
	}
}
