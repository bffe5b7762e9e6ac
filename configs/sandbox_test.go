package configs

import (
	"testing"
	"time"
)

// TestServiceSandboxDir: the service's sandboxes are approach2.sandbox_dir,
// else the gateway's when shared, else a directory beside the gateway's.
func TestServiceSandboxDir(t *testing.T) {
	c := &Config{StateDir: "/state"}
	if got := c.ServiceSandboxDir(); got != "/state/service-sandboxes" {
		t.Errorf("beside the default: %s", got)
	}
	c.Sandbox.Local.Dir = "/srv/sandboxes"
	if got := c.ServiceSandboxDir(); got != "/srv/service-sandboxes" {
		t.Errorf("beside sandbox.local.dir: %s", got)
	}
	c.Sandbox.Local.Shared = true
	if got := c.ServiceSandboxDir(); got != "/srv/sandboxes" {
		t.Errorf("shared: %s", got)
	}
	c.Approach2.SandboxDir = "/svc"
	if got := c.ServiceSandboxDir(); got != "/svc" {
		t.Errorf("approach2.sandbox_dir: %s", got)
	}
}

// TestShelfRetention: shelved work is kept for sandbox.shelf_retention,
// never less than the idle TTL or an hour.
func TestShelfRetention(t *testing.T) {
	for _, c := range []struct{ retention, ttl, want time.Duration }{
		{72 * time.Hour, time.Hour, 72 * time.Hour},
		{time.Minute, 2 * time.Hour, 2 * time.Hour},
		{0, 10 * time.Minute, time.Hour},
	} {
		s := SandboxConfig{ShelfRetention: c.retention, TTL: c.ttl}
		if got := s.Retention(); got != c.want {
			t.Errorf("shelf_retention %s, ttl %s: %s, want %s", c.retention, c.ttl, got, c.want)
		}
	}
}
