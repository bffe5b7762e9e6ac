package e2bfake

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The fake is only worth its tests if it speaks E2B's protocol as
// shared/e2b-protocol.md records it; these check its bytes, not through
// gitgate's client.

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.APIKey = "key-0123456789"
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func create(t *testing.T, s *Server) (id, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/sandboxes", strings.NewReader(`{"templateID":"base","timeout":60,"secure":true}`))
	req.Header.Set("X-API-Key", "key-0123456789")
	resp, body := do(t, req)
	var sb struct{ SandboxID, EnvdAccessToken string }
	if resp.StatusCode != 201 || json.Unmarshal(body, &sb) != nil || !strings.HasPrefix(sb.SandboxID, "i") || sb.EnvdAccessToken == "" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	return sb.SandboxID, sb.EnvdAccessToken
}

func rawStart(s *Server, id, token, contentType, msg string) *http.Request {
	frame := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	copy(frame[5:], msg)
	req, _ := http.NewRequest("POST", s.URL()+"/process.Process/Start", bytes.NewReader(frame))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("E2b-Sandbox-Id", id)
	req.Header.Set("E2b-Sandbox-Port", "49983")
	if token != "" {
		req.Header.Set("X-Access-Token", token)
	}
	return req
}

type frame struct {
	flags byte
	msg   string
}

func frames(t *testing.T, body []byte) []frame {
	t.Helper()
	var out []frame
	for len(body) > 0 {
		if len(body) < 5 {
			t.Fatalf("a truncated envelope: % x", body)
		}
		n := binary.BigEndian.Uint32(body[1:5])
		out = append(out, frame{body[0], string(body[5 : 5+n])})
		body = body[5+n:]
	}
	return out
}

func TestStartStreamIsConnectFramed(t *testing.T) {
	s := start(t, Config{})
	id, token := create(t, s)
	resp, body := do(t, rawStart(s, id, token, "application/connect+json", `{"process":{"cmd":"/bin/sh","args":["-c","echo hello"],"cwd":"/home/user"}}`))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/connect+json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fs := frames(t, body)
	if len(fs) != 4 || !strings.HasPrefix(fs[0].msg, `{"event":{"start":{"pid":`) ||
		fs[1].msg != `{"event":{"data":{"stdout":"aGVsbG8K"}}}` ||
		fs[2].msg != `{"event":{"end":{"exited":true,"status":"exit status 0"}}}` ||
		fs[3].flags != 0x02 || fs[3].msg != `{}` {
		t.Fatalf("frames: %+v", fs)
	}
	for _, f := range fs[:3] {
		if f.flags != 0 {
			t.Fatalf("event frame with flags %x", f.flags)
		}
	}
	// Errors before streaming arrive only in the end-of-stream frame, with 200.
	resp, body = do(t, rawStart(s, id, token, "application/connect+json", `{"process":{"cmd":"/bin/true","cwd":"/nope"}}`))
	fs = frames(t, body)
	if resp.StatusCode != 200 || len(fs) != 1 || fs[0].flags != 2 || fs[0].msg != `{"error":{"code":"invalid_argument","message":"cwd '/nope' does not exist"}}` {
		t.Fatalf("%d %+v", resp.StatusCode, fs)
	}
	// A unary content type on a streaming method: 415 with Accept-Post.
	resp, _ = do(t, rawStart(s, id, token, "application/json", `{}`))
	if resp.StatusCode != 415 || !strings.Contains(resp.Header.Get("Accept-Post"), "application/connect+json") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func TestStatusCodes(t *testing.T) {
	s := start(t, Config{MaxConcurrent: 1, RetryAfter: 7})
	id, _ := create(t, s)
	// envd without the access token: 401 with envd's JSON; /health needs none.
	resp, body := do(t, rawStart(s, id, "", "application/connect+json", `{}`))
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"code":401`) || !strings.Contains(string(body), "unauthorized access") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/health", nil)
	req.Header.Set("E2b-Sandbox-Id", id)
	req.Header.Set("E2b-Sandbox-Port", "49983")
	if resp, _ := do(t, req); resp.StatusCode != 204 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	// An unknown or dead sandbox through the proxy: 502.
	if resp, _ := do(t, rawStart(s, "inope", "x", "application/connect+json", `{}`)); resp.StatusCode != 502 {
		t.Fatalf("unknown sandbox: %d", resp.StatusCode)
	}
	// The API: 401 without the key, 404 for an unknown sandbox, 429 with
	// Retry-After at the concurrency cap.
	req, _ = http.NewRequest("GET", s.URL()+"/sandboxes/"+id, nil)
	if resp, _ := do(t, req); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", s.URL()+"/sandboxes/inope", nil)
	req.Header.Set("X-API-Key", "key-0123456789")
	if resp, body := do(t, req); resp.StatusCode != 404 || !strings.Contains(string(body), `"code":404`) {
		t.Fatalf("unknown: %d %s", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("POST", s.URL()+"/sandboxes", strings.NewReader(`{"templateID":"base","timeout":60}`))
	req.Header.Set("X-API-Key", "key-0123456789")
	if resp, _ := do(t, req); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("at the cap: %d %v", resp.StatusCode, resp.Header)
	}
}
