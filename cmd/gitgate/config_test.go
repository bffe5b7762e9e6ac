package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/internal/testkit"
)

// writeConfig writes yaml as a configuration file and returns its path.
func writeConfig(t *testing.T, yaml string) string { return testkit.WriteTemp(t, "gitgate.yaml", yaml) }

// TestFlagCommandsNeedNoSecrets: commands that only edit or show flags
// read the configuration for flags.path without resolving the projects'
// tokens or the service's secrets.
func TestFlagCommandsNeedNoSecrets(t *testing.T) {
	dir := t.TempDir()
	flagPath := filepath.Join(dir, "flags.flagd.json")
	if err := flags.NewFile(backends.OpNames()).Save(flagPath); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, fmt.Sprintf(`
flags: {path: %q}
sandbox: {local: {shared: true}}
redis: {addr: 127.0.0.1:6379}
postgres: {dsn_env: GITGATE_TEST_UNSET_DSN}
approach2: {token_env: GITGATE_TEST_UNSET_TOKEN}
projects:
  web: {allowed_hosts: [github.com], token_env: GITGATE_TEST_UNSET_WEB_TOKEN}
`, flagPath))
	for _, args := range [][]string{
		{"canary", "set", "status", "10", "--reason", "start"},
		{"canary", "shadow", "status", "5", "--reason", "compare"},
		{"canary", "rollback", "status", "--reason", "back"},
		{"flags", "show"},
		{"kill", "on", "--reason", "drill"},
		{"kill", "off", "--reason", "drill over"},
	} {
		out, err := runCLI(t, append(args, "--config", cfgPath)...)
		if err != nil {
			t.Errorf("gitgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	f, err := flags.Load(flagPath)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kill() || f.Route("status") != 0 {
		t.Fatalf("flags after the commands: kill %v, status %d%%", f.Kill(), f.Route("status"))
	}
	// A serving command still needs them.
	if _, err := configs.Load(cfgPath, os.Getenv); err == nil {
		t.Fatal("configs.Load resolved the configuration without its tokens")
	}
}
