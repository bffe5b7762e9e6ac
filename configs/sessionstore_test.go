package configs

import (
	"strings"
	"testing"
)

// TestSessionStoreChoice: mcp.session_store defaults to auto, which keeps
// sessions in Redis exactly when Redis is configured; memory and redis
// force the choice; redis without Redis and an unknown value are refused
// naming the key.
func TestSessionStoreChoice(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MCP.SessionStore != SessionStoreAuto || cfg.MCP.SessionsInRedis(false) || !cfg.MCP.SessionsInRedis(true) {
		t.Errorf("default %q: in Redis without it %v, with it %v; want auto, false, true",
			cfg.MCP.SessionStore, cfg.MCP.SessionsInRedis(false), cfg.MCP.SessionsInRedis(true))
	}
	for _, tc := range []struct {
		yaml      string
		inRedis   bool
		refusal   string // "" if valid
		redisAddr bool
	}{
		{yaml: "mcp: {session_store: memory}\nredis: {addr: 127.0.0.1:6379}", inRedis: false, redisAddr: true},
		{yaml: "mcp: {session_store: redis}\nredis: {addr: 127.0.0.1:6379}", inRedis: true, redisAddr: true},
		{yaml: "mcp: {session_store: auto}\nredis: {addr: 127.0.0.1:6379}", inRedis: true, redisAddr: true},
		{yaml: "mcp: {session_store: auto}", inRedis: false},
		{yaml: "mcp: {session_store: redis}\nredis: {sentinel: {master_name: gitgate, addrs: [127.0.0.1:26379]}}", inRedis: true, redisAddr: true},
		{yaml: "mcp: {session_store: redis}", refusal: "mcp.session_store: redis needs Redis"},
		{yaml: "mcp: {session_store: sticky}", refusal: `mcp.session_store: "sticky" must be auto, memory or redis`},
	} {
		cfg, err := Load(writeConfig(t, tc.yaml), noEnv)
		if tc.refusal != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refusal) {
				t.Errorf("%q: %v, want a refusal saying %q", tc.yaml, err, tc.refusal)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if got := cfg.MCP.SessionsInRedis(tc.redisAddr); got != tc.inRedis {
			t.Errorf("%q: sessions in Redis %v, want %v", tc.yaml, got, tc.inRedis)
		}
	}
	t.Setenv("GITGATE_MCP_SESSION_STORE", "memory")
	cfg, err = Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MCP.SessionStore != SessionStoreMemory {
		t.Errorf("GITGATE_MCP_SESSION_STORE=memory: session_store %q", cfg.MCP.SessionStore)
	}
}
