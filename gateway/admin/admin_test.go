package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeKill is a KillSwitch in memory.
type fakeKill struct{ ov *flags.Override }

func (k *fakeKill) SetOverride(ov flags.Override) error { k.ov = &ov; return nil }
func (k *fakeKill) ClearOverride(string, string) error  { k.ov = nil; return nil }
func (k *fakeKill) CurrentOverride() (flags.Override, bool) {
	if k.ov == nil {
		return flags.Override{}, false
	}
	return *k.ov, true
}

func do(t *testing.T, h http.Handler, method, path, token string) int {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader([]byte(`{"kill": true, "by": "eve", "reason": "why not"}`)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func ready(context.Context) error { return nil }

// TestOverrideNeedsATokenByDefault: with no admin token configured, the
// override can be read but neither set nor cleared, unless the operator
// opts out; with a token, only that token changes it.
func TestOverrideNeedsATokenByDefault(t *testing.T) {
	const token = "adm-token-0123"
	sum := "a3c0e4d6d0a1e5d4f1c4d0b9e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4" // not token's hash
	for _, tc := range []struct {
		name       string
		cfg        Config
		token      string
		wantStatus int
	}{
		{"no token configured", Config{}, "", http.StatusForbidden},
		{"no token configured, one sent", Config{}, token, http.StatusForbidden},
		{"opted out", Config{KillWithoutToken: true}, "", http.StatusOK},
		{"token configured, none sent", Config{KillTokenSHA256: hashHex(token)}, "", http.StatusUnauthorized},
		{"token configured, wrong one", Config{KillTokenSHA256: sum}, token, http.StatusUnauthorized},
		{"token configured and sent", Config{KillTokenSHA256: hashHex(token)}, token, http.StatusOK},
		{"token configured and sent, opted out too", Config{KillTokenSHA256: hashHex(token), KillWithoutToken: true}, "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKill{}
			tc.cfg.Gatherer, tc.cfg.Ready, tc.cfg.Kill = prometheus.NewRegistry(), ready, k
			h := New(tc.cfg)
			if code := do(t, h, http.MethodPost, "/kill", tc.token); code != tc.wantStatus {
				t.Fatalf("POST /kill: %d, want %d", code, tc.wantStatus)
			}
			if _, on := k.CurrentOverride(); on != (tc.wantStatus == http.StatusOK) {
				t.Fatalf("override set: %v after %d", on, tc.wantStatus)
			}
			_ = k.SetOverride(flags.Override{Kill: true, By: "ops", Reason: "incident"})
			if code := do(t, h, http.MethodDelete, "/kill?by=eve&reason=x", tc.token); code != tc.wantStatus {
				t.Fatalf("DELETE /kill: %d, want %d", code, tc.wantStatus)
			}
			if _, on := k.CurrentOverride(); on != (tc.wantStatus != http.StatusOK) {
				t.Fatalf("override still set: %v after %d", on, tc.wantStatus)
			}
			if code := do(t, h, http.MethodGet, "/kill", ""); code != http.StatusOK {
				t.Fatalf("GET /kill: %d", code)
			}
		})
	}
}

// TestStatusEndpoint: GET /status serves the status with whether the
// override needs a token, without one.
func TestStatusEndpoint(t *testing.T) {
	st := &flags.Status{Kill: flags.KillStatus{Effective: true, Source: flags.KillOverride}}
	h := New(Config{Gatherer: prometheus.NewRegistry(), Ready: ready, Kill: &fakeKill{},
		Status: func(context.Context) Status { return Status{Status: st, Breakers: map[string]string{"push": "open"}} }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	body := rec.Body.String()
	for _, want := range []string{`"effective":true`, `"source":"override"`, `"push":"open"`, `"override_needs_token":true`} {
		if rec.Code != 200 || !bytes.Contains([]byte(body), []byte(want)) {
			t.Fatalf("GET /status: %d %s, want %s", rec.Code, body, want)
		}
	}
}

func hashHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
