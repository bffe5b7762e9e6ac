package admin

import (
	"context"
	"strings"
	"testing"

	"net/http/httptest"

	"github.com/gitgate/gitgate/flags"
	"github.com/prometheus/client_golang/prometheus"
)

// TestClientSpeaksToTheHandler: the client sets and clears the override
// on the handler with the token, is refused without it (saying why), and
// reads the status; a gateway without flags is an error.
func TestClientSpeaksToTheHandler(t *testing.T) {
	const token = "adm-client-test-token"
	kill := &fakeKill{}
	st := &flags.Status{Kill: flags.KillStatus{Effective: true, Source: flags.KillOverride}}
	srv := httptest.NewServer(New(Config{Gatherer: prometheus.NewRegistry(), Ready: ready, Kill: kill, KillTokenSHA256: hashHex(token),
		Status: func(context.Context) Status { return Status{Status: st} }}))
	t.Cleanup(srv.Close)
	ctx := t.Context()

	err := NewClient(srv.URL, "wrong").SetKillOverride(ctx, "eve", "no token")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "needs the admin token") {
		t.Fatalf("override with a wrong token: %v", err)
	}
	if _, on := kill.CurrentOverride(); on {
		t.Fatal("a refused override changed the kill switch")
	}
	c := NewClient(srv.URL+"/", token)
	if err := c.SetKillOverride(ctx, "ops", "drill"); err != nil {
		t.Fatal(err)
	}
	if ov, on := kill.CurrentOverride(); !on || !ov.Kill || ov.By != "ops" || ov.Reason != "drill" {
		t.Fatalf("override after SetKillOverride: %+v (on %v)", ov, on)
	}
	got, err := c.Status(ctx)
	if err != nil || got.Status == nil || !got.Kill.Effective || got.Kill.Source != flags.KillOverride || !got.OverrideNeedsToken {
		t.Fatalf("status: %+v, %v", got, err)
	}
	if err := c.ClearOverride(ctx, "ops", "drill over"); err != nil {
		t.Fatal(err)
	}
	if _, on := kill.CurrentOverride(); on {
		t.Fatal("the override is still on after ClearOverride")
	}

	st = nil // a gateway without canary flags
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "no canary flags") {
		t.Fatalf("status of a gateway without flags: %v", err)
	}
}
