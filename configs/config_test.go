package configs

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/internal/testkit"
	"github.com/spf13/viper"
)

// writeConfig writes yaml as a configuration file and returns its path.
func writeConfig(t *testing.T, yaml string) string { return testkit.WriteTemp(t, "gitgate.yaml", yaml) }

func noEnv(string) string { return "" }

func TestDefaultConfig(t *testing.T) {
	cfg, err := Load("", noEnv)
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
	cfg, err := Load("", noEnv)
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
	cfg, err := Load(path, func(k string) string { return map[string]string{"WEB_TOKEN": "s3cret-web-token"}[k] })
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
		_, err := Load(writeConfig(t, c.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("config %q: error %v, want one naming %s", c.yaml, err, c.key)
		}
	}
}

func TestConfigFileMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), noEnv); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestUnknownFileKeysAreRefused: a misspelt key anywhere in the file, in
// sections, map-valued sections and lists, stops the load and is named
// with the closest valid key.
func TestUnknownFileKeysAreRefused(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cases := []struct{ yaml, want string }{
		{"sandbox: {tll: 30m}", "unknown configuration key sandbox.tll (did you mean sandbox.ttl?)"},
		{"sandbx: {ttl: 30m}", "unknown configuration key sandbx (did you mean sandbox?)"},
		{"sandbox: {local: {shraed: true}}", "unknown configuration key sandbox.local.shraed (did you mean sandbox.local.shared?)"},
		{"canary: {judge: {miss_rtae: 0.1}}", "unknown configuration key canary.judge.miss_rtae (did you mean canary.judge.miss_rate?)"},
		{"canary: {judge: {latency_floor: {abss: 1s}}}", "unknown configuration key canary.judge.latency_floor.abss (did you mean canary.judge.latency_floor.abs?)"},
		{"projects:\n  p: {allowed_hosts: [h], token_evn: P_TOKEN}", "unknown configuration key projects.p.token_evn (did you mean projects.p.token_env?)"},
		{"projects:\n  p: {allowed_hosts: [h]}\nagents:\n  - {name: a, project: p, token_sha256: " + hash + ", author_name: A, author_email: a@x.example}\n  - {nmae: b}",
			"unknown configuration key agents[1].nmae (did you mean agents[1].name?)"},
		{"log: {colour: red}", "unknown configuration key log.colour (the keys under log are format, level)"},
		{"listen: {Admin_Token_SHA265: x}", "did you mean listen.admin_token_sha256?"},
	}
	for _, c := range cases {
		_, err := Load(writeConfig(t, c.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: error %v, want one saying %q", c.yaml, err, c.want)
		}
	}
	// Keys of every kind that exist are accepted, in any case.
	ok := "sandbox: {TTL: 2h, local: {shared: false}, vault: {max_bytes: 1}}\ncanary: {judge: {min_calls: 50, error_floor: {abs: 0.01}}}\n" +
		"projects:\n  p: {allowed_hosts: [h], token_username: u, read_token_env: \"\"}\n" +
		"agents:\n  - {name: a, project: p, token_sha256: " + hash + ", author_name: A, author_email: a@x.example}\n"
	if _, err := Load(writeConfig(t, ok), noEnv); err != nil {
		t.Fatalf("valid keys refused: %v", err)
	}
}

// TestUnknownEnvironmentVariablesAreRefused: a GITGATE_* variable is a
// configuration key's, a variable an *_env key names, or a documented
// non-configuration variable; anything else is refused by name.
func TestUnknownEnvironmentVariablesAreRefused(t *testing.T) {
	t.Run("misspelt key", func(t *testing.T) {
		t.Setenv("GITGATE_SANDBOX_TLL", "30m")
		_, err := Load("", noEnv)
		if err == nil || !strings.Contains(err.Error(), "unknown configuration variable GITGATE_SANDBOX_TLL") ||
			!strings.Contains(err.Error(), "did you mean GITGATE_SANDBOX_TTL, key sandbox.ttl?") {
			t.Fatalf("GITGATE_SANDBOX_TLL: %v", err)
		}
	})
	t.Run("misspelt token variable", func(t *testing.T) {
		path := writeConfig(t, "projects:\n  web: {allowed_hosts: [h], token_env: GITGATE_TOKEN_WEB}")
		t.Setenv("GITGATE_TOKN_WEB", "s3cret")
		_, err := Load(path, func(string) string { return "s3cret" })
		if err == nil || !strings.Contains(err.Error(), "GITGATE_TOKN_WEB") || !strings.Contains(err.Error(), "did you mean GITGATE_TOKEN_WEB") {
			t.Fatalf("GITGATE_TOKN_WEB: %v", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the error shows the variable's value: %v", err)
		}
	})
	t.Run("accepted", func(t *testing.T) {
		path := writeConfig(t, "projects:\n  web: {allowed_hosts: [h], token_env: GITGATE_TOKEN_WEB}")
		for k, v := range map[string]string{
			"GITGATE_TOKEN_WEB":                   "named by projects.web.token_env",
			"GITGATE_APPROACH2_TOKEN":             "named by approach2.token_env",
			"GITGATE_POSTGRES_DSN":                "named by postgres.dsn_env",
			"GITGATE_ADMIN_TOKEN":                 "read by gitgate kill",
			"GITGATE_TEST_POSTGRES_DSN":           "a test setting",
			"GITGATE_STATE_DIR":                   t.TempDir(),
			"GITGATE_PROJECTS_WEB_TOKEN_USERNAME": "bot",
		} {
			t.Setenv(k, v)
		}
		cfg, err := Load(path, func(string) string { return "token" })
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Projects["web"].TokenUsername != "bot" {
			t.Fatalf("GITGATE_PROJECTS_WEB_TOKEN_USERNAME not applied: %+v", cfg.Projects["web"])
		}
	})
}

// TestE2BNeedsItsKey: sandbox.provider e2b without the key's variable set
// is refused at start with an error naming the key.
func TestE2BNeedsItsKey(t *testing.T) {
	path := writeConfig(t, "sandbox: {provider: e2b}")
	_, err := Load(path, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "sandbox.e2b.api_key_env") || !strings.Contains(err.Error(), "E2B_API_KEY") {
		t.Fatalf("error %v", err)
	}
	if _, err := Load(path, func(k string) string { return map[string]string{"E2B_API_KEY": "e2b-test-key"}[k] }); err != nil {
		t.Fatalf("with the key set: %v", err)
	}
	_ = os.Remove(path)
}

// TestDefaultsListEveryKey: configs/gitgate.yaml documents every key of
// Config (and so its GITGATE_<KEY> variable).
func TestDefaultsListEveryKey(t *testing.T) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(DefaultYAML)); err != nil {
		t.Fatal(err)
	}
	for _, k := range leafKeys("", reflect.TypeFor[Config]()) {
		if !v.InConfig(k) {
			t.Errorf("configs/gitgate.yaml does not list %s", k)
		}
	}
}

// TestCanaryRollbackWasReplaced: a file or a variable still setting the
// old canary.rollback thresholds is refused, saying that canary.judge
// replaced them.
func TestCanaryRollbackWasReplaced(t *testing.T) {
	for _, yaml := range []string{"canary: {rollback: {window: 5m, max_p95: 2s}}", "canary:\n  rollback:\n    min_calls: 20\n"} {
		_, err := Load(writeConfig(t, yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), "configuration key canary.rollback was replaced") || !strings.Contains(err.Error(), "canary.judge") {
			t.Errorf("config %q: error %v, want one saying canary.judge replaced canary.rollback", yaml, err)
		}
	}
	t.Setenv("GITGATE_CANARY_ROLLBACK_MAX_P95", "2s")
	if _, err := Read("", noEnv); err == nil || !strings.Contains(err.Error(), "GITGATE_CANARY_ROLLBACK_MAX_P95 sets a key of canary.rollback, which was replaced") {
		t.Errorf("variable: error %v", err)
	}
}

// TestJudgeSettings: canary.judge reaches the judge as set (the latency
// floor in milliseconds), zero values take the judge's defaults, and
// values out of range are refused by key.
func TestJudgeSettings(t *testing.T) {
	c, err := Read(writeConfig(t, `canary:
  judge:
    false_alarm_rate: 0.001
    miss_rate: 0.1
    min_calls: 500
    error_floor: {abs: 0.01, rel: 0.2}
    latency_floor: {abs: 1.5s, rel: 0.1}
    max_mismatch_rate: 0.005
    max_cost_ratio: 2
    min_stage_time: 24h
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := canary.JudgeConfig{FalseAlarmRate: 0.001, MissRate: 0.1, MinCalls: 500, ErrorFloor: canary.Floor{Abs: 0.01, Rel: 0.2},
		LatencyFloor: canary.Floor{Abs: 1500, Rel: 0.1}, MaxMismatchRate: 0.005, MaxCostRatio: 2, MinStageTime: 24 * time.Hour}
	if got := c.Canary.JudgeConfig(); got != want {
		t.Errorf("judge config\n got %+v\nwant %+v", got, want)
	}
	d, err := Read("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got, def := d.Canary.JudgeConfig(), (canary.JudgeConfig{}).WithDefaults(); got != def {
		t.Errorf("the embedded defaults give %+v, the judge's are %+v", got, def)
	}
	for yaml, want := range map[string]string{
		"canary: {judge: {false_alarm_rate: 0.7}}":     "canary.judge.false_alarm_rate: 0.7 is not in (0, 0.5)",
		"canary: {judge: {miss_rate: -0.1}}":           "canary.judge.miss_rate: cannot be negative",
		"canary: {judge: {latency_floor: {abs: -1s}}}": "canary.judge.latency_floor.abs: cannot be negative",
		"canary: {judge: {max_mismatch_rate: 1}}":      "canary.judge.max_mismatch_rate: 1 is not in (0, 1)",
		"canary: {judge: {error_floor: {rel: -0.5}}}":  "canary.judge.error_floor.rel: cannot be negative",
		"canary: {judge: {min_stage_time: -1h}}":       "canary.judge.min_stage_time: cannot be negative",
	} {
		if _, err := Load(writeConfig(t, yaml), noEnv); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: error %v, want %q", yaml, err, want)
		}
	}
}
