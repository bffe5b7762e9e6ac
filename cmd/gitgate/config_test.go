package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.MCP != "127.0.0.1:7420" || cfg.Sandbox.TTL != time.Hour || cfg.Sandbox.Scope != "project" ||
		cfg.Backend.Default != "approach1" || cfg.Git.AllowHTTP || cfg.Limits.MaxFileBytes != 10<<20 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestEnvironmentOverridesKeys(t *testing.T) {
	t.Setenv("GITGATE_SANDBOX_TTL", "30m")
	t.Setenv("GITGATE_LISTEN_MCP", "127.0.0.1:9999")
	t.Setenv("GITGATE_SANDBOX_SCOPE", "agent")
	cfg, err := loadConfig("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sandbox.TTL != 30*time.Minute || cfg.Listen.MCP != "127.0.0.1:9999" || cfg.Sandbox.Scope != "agent" {
		t.Fatalf("environment not applied: %+v", cfg)
	}
}

func TestProjectTokenComesFromTheNamedVariable(t *testing.T) {
	path := writeConfig(t, `
projects:
  web: {allowed_hosts: [github.com], token_env: WEB_TOKEN}
agents:
  - {name: builder, project: web, token_sha256: `+strings.Repeat("ab", 32)+`, author_name: B, author_email: b@x.example}
`)
	cfg, err := loadConfig(path, func(k string) string { return map[string]string{"WEB_TOKEN": "s3cret-web-token"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Projects["web"]
	if p.Token != "s3cret-web-token" || len(p.AllowedSchemes) != 1 || p.AllowedSchemes[0] != "https" {
		t.Fatalf("project %+v", p)
	}
}

// TestInvalidConfigNamesTheKey: every refusal names the key to fix.
func TestInvalidConfigNamesTheKey(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	agent := func(extra string) string {
		return "projects:\n  web: {allowed_hosts: [github.com]}\nagents:\n  - {name: a, project: web, token_sha256: " + hash + ", author_name: A, author_email: a@x.example" + extra + "}\n"
	}
	cases := []struct{ yaml, env, key string }{
		{"sandbox: {scope: team}", "", "sandbox.scope"},
		{"sandbox: {provider: docker}", "", "sandbox.provider"},
		{"sandbox: {ttl: 10s}", "", "sandbox.ttl"},
		{"listen: {mcp: nowhere}", "", "listen.mcp"},
		{"log: {level: loud}", "", "log.level"},
		{"git: {path: git}", "", "git.path"},
		{"limits: {max_file_bytes: 100000000}", "", "limits.max_file_bytes"},
		{"backend: {default: approach9}", "", "backend.default"},
		{"projects:\n  \"-web\": {allowed_hosts: [github.com]}", "", "projects.-web: project names"},
		{"projects:\n  web: {allowed_hosts: []}", "", "projects.web.allowed_hosts"},
		{"projects:\n  web: {allowed_hosts: [h], allowed_schemes: [http]}", "", "projects.web.allowed_schemes"},
		{"projects:\n  web: {allowed_hosts: [h], allowed_schemes: [ssh]}", "", "projects.web.allowed_schemes"},
		{"projects:\n  web: {allowed_hosts: [h], token_env: MISSING_TOKEN}", "", "projects.web.token_env"},
		{"agents:\n  - {name: a, project: nope, token_sha256: " + hash + ", author_name: A, author_email: a@x.example}", "", "agents[0].project"},
		{strings.Replace(agent(""), hash, "xyz", 1), "", "agents[0].token_sha256"},
		{agent("") + "  - {name: b, project: web, token_sha256: " + hash + ", author_name: B, author_email: b@x.example}\n", "", "agents[1].token_sha256"},
		{strings.Replace(agent(""), "author_name: A", "author_name: A <evil>", 1), "", "agents[0].author_name"},
		{agent("") + "mcp: {stdio_agent: ghost}\n", "", "mcp.stdio_agent"},
		{"sandbox: {ttl: soon}", "", "sandbox"},
		{"flags: {path: /srv/gitgate/flags.json}", "", "sandbox.local.shared"},
		{"canary: {ledger_dsn_env: GITGATE_NO_SUCH_DSN}", "", "canary.ledger_dsn_env"},
		{"listen: {admin_token_sha256: abc}", "", "listen.admin_token_sha256"},
		{"flags: {path: /srv/gitgate/flags.json}\nbackend: {default: approach2}", "", "backend.default"},
		{"flags: {path: /srv/f.json, sync_addr: 10.0.0.5:8015}", "", "flags.sync_addr"},
		{"flags: {sync_addr: 10.0.0.5:8015}", "", "flags.override_path"},
		{"flags: {sync_addr: 10.0.0.5:8015, override_path: /srv/o.json}", "", "canary.ledger_path"},
		{"flags: {sync_addr: 10.0.0.5:8015, override_path: /srv/o.json}\ncanary: {ledger_path: /srv/l.jsonl}", "", "sandbox.local.shared"},
		{"projects:\n  web: {allowed_hosts: [h], read_token_env: MISSING_TOKEN}", "", "projects.web.read_token_env"},
		{"flags: {path: /srv/f.json}\nsandbox: {local: {shared: true}}\nredis: {addr: 127.0.0.1:6379}", "", "postgres.dsn_env"},
	}
	for _, c := range cases {
		_, err := loadConfig(writeConfig(t, c.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("config %q: error %v, want one naming %s", c.yaml, err, c.key)
		}
	}
}

func TestConfigFileMissing(t *testing.T) {
	if _, err := loadConfig(filepath.Join(t.TempDir(), "absent.yaml"), noEnv); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
