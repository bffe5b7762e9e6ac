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

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
)

// clientTimeout bounds each call of a Client.
const clientTimeout = 5 * time.Second

// Client speaks to a running gateway's admin listener (the handler New
// returns): it sets and clears the kill-switch override, the drill mark and
// forced breakers, and reads the routing status. It is what `gitgate kill
// --admin`, `gitgate flags show --admin` and `gitgate drill` use.
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

// SetOverride puts the kill-switch override ov (kill on or off, by, reason)
// in force, as POST /kill does: what a drill uses to put back an override
// as it was.
func (c *Client) SetOverride(ctx context.Context, ov flags.Override) error {
	body, err := json.Marshal(map[string]any{"kill": ov.Kill, "by": ov.By, "reason": ov.Reason})
	if err != nil {
		return fmt.Errorf("admin: encode the override: %w", err)
	}
	return c.send(ctx, http.MethodPost, "/kill", body)
}

// SetDrill marks the gateway with a drill (PUT /drill), or refreshes the
// mark of the same drill. Another drill's mark is a *DrillConflict error
// naming its holder.
func (c *Client) SetDrill(ctx context.Context, m DrillMarkRequest) error {
	if m.TTL > 0 {
		m.TTLSeconds = m.TTL.Seconds()
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("admin: encode the drill mark: %w", err)
	}
	return c.send(ctx, http.MethodPut, "/drill", body)
}

// ClearDrill ends drill id's mark with its result and detail (DELETE
// /drill); the gateway records the drill's window in its ledger. Another
// drill's mark is a *DrillConflict error.
func (c *Client) ClearDrill(ctx context.Context, id string, result gateway.DrillResult, detail string) error {
	q := url.Values{"id": {id}, "result": {string(result)}, "detail": {detail}}
	return c.send(ctx, http.MethodDelete, "/drill?"+q.Encode(), nil)
}

// ForceBreaker holds op's Approach 2 breaker open on the gateway for ttl,
// or until released (POST /breaker).
func (c *Client) ForceBreaker(ctx context.Context, op backends.Op, by, reason string, ttl time.Duration) error {
	body, err := json.Marshal(BreakerRequest{Op: op, By: by, Reason: reason, TTLSeconds: ttl.Seconds()})
	if err != nil {
		return fmt.Errorf("admin: encode the breaker: %w", err)
	}
	return c.send(ctx, http.MethodPost, "/breaker", body)
}

// ReleaseBreaker ends the force on op's breaker (DELETE /breaker); one that
// is not forced is no error.
func (c *Client) ReleaseBreaker(ctx context.Context, op backends.Op, by, reason string) error {
	q := url.Values{"op": {string(op)}, "by": {by}, "reason": {reason}}
	return c.send(ctx, http.MethodDelete, "/breaker?"+q.Encode(), nil)
}

// send sends a change (a JSON body, or none) to path.
func (c *Client) send(ctx context.Context, method, path string, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return fmt.Errorf("admin URL: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.change(req); err != nil {
		return fmt.Errorf("%s %s: %w", method, strings.SplitN(path, "?", 2)[0], err)
	}
	return nil
}

// change sends a request that changes the routing, with the token. A 409
// with a drill's holder is a *DrillConflict.
func (c *Client) change(req *http.Request) error {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		var dc DrillConflict
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&dc); err == nil && dc.Holder.ID != "" {
			return &dc
		}
		return fmt.Errorf("%s", resp.Status)
	}
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

// Ready asks the gateway whether it can serve traffic (GET /readyz); the
// error says why not.
func (c *Client) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("admin URL: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /readyz: %s: %s", resp.Status, readMessage(resp.Body))
	}
	return nil
}

// readMessage returns the start of an error answer's body.
func readMessage(r io.Reader) string {
	msg, _ := io.ReadAll(io.LimitReader(r, 1024))
	return strings.TrimSpace(string(msg))
}
