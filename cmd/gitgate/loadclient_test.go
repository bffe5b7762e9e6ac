package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// loadClient speaks MCP Streamable HTTP with as little client-side work as
// possible, like wrk: one keep-alive connection and one session (opened
// with the real initialize handshake), then tools/call requests whose
// responses are checked, not decoded. It stands for agents whose MCP
// clients run on their own machines, so that a throughput figure measures
// the gateway rather than a client library sharing the gateway's two cores.
// Not safe for concurrent use: one per simulated agent.
type loadClient struct {
	host, path, token, session string
	id                         int
	conn                       net.Conn
	r                          *bufio.Reader
}

func newLoadClient(t testing.TB, rawURL, token string) *loadClient {
	hostPath := strings.TrimPrefix(rawURL, "http://")
	i := strings.IndexByte(hostPath, '/')
	c := &loadClient{host: hostPath[:i], path: hostPath[i:], token: token}
	conn, err := net.Dial("tcp", c.host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	resp, body := c.post(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"load","version":"1"}}}`)
	c.session = resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || c.session == "" {
		t.Fatalf("initialize: %d %s", resp.StatusCode, body)
	}
	if resp, body := c.post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); resp.StatusCode/100 != 2 {
		t.Fatalf("initialized: %d %s", resp.StatusCode, body)
	}
	return c
}

// call invokes a tool; the response must be a successful tool result.
func (c *loadClient) call(t testing.TB, tool, args string) {
	c.id++
	resp, out := c.post(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, c.id, tool, args))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"result"`)) || bytes.Contains(out, []byte(`"isError":true`)) {
		t.Fatalf("%s: %d %s", tool, resp.StatusCode, out)
	}
}

func (c *loadClient) post(t testing.TB, body string) (*http.Response, []byte) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n", c.path, c.host, c.token, len(body))
	if c.session != "" {
		fmt.Fprintf(&req, "Mcp-Session-Id: %s\r\nMcp-Protocol-Version: 2025-06-18\r\n", c.session)
	}
	req.WriteString("\r\n" + body)
	if _, err := c.conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// backendOf calls a tool and returns which backend served it, or the
// error text of a failed call.
func (c *loadClient) backendOf(t testing.TB, tool, args string) (backend, errText string) {
	c.id++
	resp, out := c.post(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, c.id, tool, args))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Sprintf("HTTP %d: %s", resp.StatusCode, out)
	}
	var msg struct {
		Result struct {
			IsError           bool `json:"isError"`
			StructuredContent struct {
				Backend string `json:"backend"`
			} `json:"structuredContent"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &msg); err != nil {
		return "", "undecodable response: " + string(out)
	}
	if msg.Result.IsError {
		return "", msg.Result.Content[0].Text
	}
	return msg.Result.StructuredContent.Backend, ""
}
