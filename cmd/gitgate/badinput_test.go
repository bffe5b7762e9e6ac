package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
)

// TestHTTPRefusals: requests without a valid token, from a foreign Origin or
// for a foreign Host never reach the MCP layer; a session is usable only by
// the agent that opened it.
func TestHTTPRefusals(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	ada := w.httpClient(t, agentToken)
	w.ok(t, ada, "list_workspaces", map[string]any{})
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	cases := []struct {
		name    string
		headers map[string]string
		host    string
		want    int
	}{
		{"no token", nil, "", http.StatusUnauthorized},
		{"wrong token", map[string]string{"Authorization": "Bearer gga_wrong"}, "", http.StatusUnauthorized},
		{"basic auth", map[string]string{"Authorization": "Basic " + agentToken}, "", http.StatusUnauthorized},
		{"foreign origin", map[string]string{"Authorization": "Bearer " + agentToken, "Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"foreign host", map[string]string{"Authorization": "Bearer " + agentToken}, "evil.example", http.StatusForbidden},
		{"other agent's session", map[string]string{"Authorization": "Bearer " + strangerToken, "Mcp-Session-Id": sessionOf(t, w)}, "", http.StatusNotFound},
		{"valid", map[string]string{"Authorization": "Bearer " + agentToken}, "", http.StatusOK},
	}
	for _, c := range cases {
		status, body := post(t, w.mcpURL, c.host, c.headers, init)
		w.record(body)
		if status != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, status, c.want, body)
		}
	}
}

// sessionOf opens a session as ada and returns its id.
func sessionOf(t *testing.T, w *world) string {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.mcpURL, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
	setMCPHeaders(req, map[string]string{"Authorization": "Bearer " + agentToken})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		t.Fatal("no session id")
	}
	return id
}

func post(t *testing.T, url, host string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	setMCPHeaders(req, headers)
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func setMCPHeaders(req *http.Request, headers map[string]string) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
}

// TestToolRefusals: hostile or malformed tool calls get categorised errors
// and change neither the remote nor the workspace. make test runs it
// without -race (NORACE_TESTS in the Makefile): its 11 MiB write_file is
// most of its time, and under -race most of that is the detector's
// bookkeeping of the copies.
func TestToolRefusals(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	ada, eve := w.httpClient(t, agentToken), w.httpClient(t, strangerToken)
	w.ok(t, ada, "clone", map[string]any{"workspace": "ws", "url": w.repoURL})
	before := w.state(t, ada)
	host := strings.TrimPrefix(strings.TrimSuffix(w.repoURL, "/demo.git"), "http://")
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"clone", map[string]any{"workspace": "x", "url": "ext::sh -c touch% /tmp/pwn"}, "invalid_argument"},
		{"clone", map[string]any{"workspace": "x", "url": "--upload-pack=touch /tmp/pwn"}, "invalid_argument"},
		{"clone", map[string]any{"workspace": "x", "url": "file:///etc"}, "forbidden"},
		{"clone", map[string]any{"workspace": "x", "url": "ssh://" + host + "/demo.git"}, "forbidden"},
		{"clone", map[string]any{"workspace": "x", "url": "http://user:" + gitToken + "@" + host + "/demo.git"}, "invalid_argument"},
		{"clone", map[string]any{"workspace": "x", "url": "http://evil.example/demo.git"}, "forbidden"},
		{"clone", map[string]any{"workspace": "../x", "url": w.repoURL}, "invalid_argument"},
		{"clone", map[string]any{"workspace": "x", "url": w.repoURL, "project": "beta"}, "invalid_argument"},
		{"clone", map[string]any{"workspace": 7, "url": w.repoURL}, "invalid_argument"},
		{"checkout", map[string]any{"workspace": "ws", "branch": "--orphan"}, "invalid_argument"},
		{"checkout", map[string]any{"workspace": "ws", "branch": "a..b"}, "invalid_argument"},
		{"push", map[string]any{"workspace": "ws", "branch": "+main:refs/heads/x"}, "invalid_argument"},
		{"commit", map[string]any{"workspace": "ws", "message": "x", "paths": []any{"../../etc/passwd"}}, "invalid_argument"},
		{"commit", map[string]any{"workspace": "ws", "message": ""}, "invalid_argument"},
		{"diff", map[string]any{"workspace": "ws", "ref": "--output=/tmp/pwn"}, "invalid_argument"},
		{"read_file", map[string]any{"workspace": "ws", "path": "../../../etc/passwd"}, "invalid_argument"},
		{"write_file", map[string]any{"workspace": "ws", "path": ".git/hooks/post-checkout", "content": "#!/bin/sh\n"}, "forbidden"},
		{"write_file", map[string]any{"workspace": "ws", "path": "big.bin", "content": strings.Repeat("A", 11<<20)}, "resource_exhausted"},
		{"list_workspaces", map[string]any{"workspace": "ws"}, "invalid_argument"},
	} {
		w.fail(t, ada, c.tool, c.args, c.want)
	}
	w.fail(t, eve, "status", map[string]any{"workspace": "ws"}, "not_found")
	w.fail(t, eve, "write_file", map[string]any{"workspace": "ws", "path": "x", "content": "x"}, "not_found")
	w.fail(t, eve, "release_workspace", map[string]any{"workspace": "ws", "force": true}, "not_found")
	if after := w.state(t, ada); after != before {
		t.Fatalf("refused calls changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// state describes the remote's refs and the workspace's status and files.
func (w *world) state(t *testing.T, ada *client.Client) string {
	st := w.ok(t, ada, "status", map[string]any{"workspace": "ws"})
	ls := w.ok(t, ada, "list_files", map[string]any{"workspace": "ws", "recursive": true})
	return fmt.Sprint(w.remoteGit(t, "for-each-ref"), w.remote.Pushes("demo"), st["head"], st["entries"], ls["entries"])
}
