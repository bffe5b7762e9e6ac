package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// clientTimeout bounds each call of a Client.
const clientTimeout = 5 * time.Second

// Client speaks to a running gateway's admin listener (the handler New
// returns): it sets and clears the kill-switch override and reads the
// routing status. It is what `gitgate kill --admin` and `gitgate flags
// show --admin` use.
type Client struct {
	url   string
	token string
	http  *http.Client
}

// NewClient returns a client of the admin listener at adminURL
// (scheme://host:port). token is the admin token sent when changing the
// override ("" sends none).
func NewClient(adminURL, token string) *Client {
	return &Client{url: strings.TrimSuffix(adminURL, "/"), token: token, http: &http.Client{Timeout: clientTimeout}}
}

// SetKillOverride turns the kill-switch override on: every operation goes
// to Approach 1 on that gateway until it is cleared.
func (c *Client) SetKillOverride(ctx context.Context, by, reason string) error {
	body, err := json.Marshal(map[string]any{"kill": true, "by": by, "reason": reason})
	if err != nil {
		return fmt.Errorf("admin: encode the override: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/kill", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("admin URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return c.change(req)
}

// ClearOverride clears the kill-switch override, recording who and why.
func (c *Client) ClearOverride(ctx context.Context, by, reason string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url+"/kill?by="+url.QueryEscape(by)+"&reason="+url.QueryEscape(reason), nil)
	if err != nil {
		return fmt.Errorf("admin URL: %w", err)
	}
	return c.change(req)
}

// change sends a request that changes the override, with the token.
func (c *Client) change(req *http.Request) error {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, readMessage(resp.Body))
	}
	return nil
}

// Status reads the routing state the gateway applies (GET /status, open
// without a token). A gateway without canary flags is an error.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/status", nil)
	if err != nil {
		return st, fmt.Errorf("admin URL: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s: %s", resp.Status, readMessage(resp.Body))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("GET /status: %w", err)
	}
	if st.Status == nil {
		return st, errors.New("GET /status: the gateway has no canary flags")
	}
	return st, nil
}

// readMessage returns the start of an error answer's body.
func readMessage(r io.Reader) string {
	msg, _ := io.ReadAll(io.LimitReader(r, 1024))
	return strings.TrimSpace(string(msg))
}
