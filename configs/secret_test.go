package configs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/testkit"
)

// The secret values these tests write: every captured line, error and
// formatting is scanned for them (scanForSecrets).
const (
	firstToken  = "first-token-4b1d9c"
	secondToken = "second-token-77e0aa"
	thirdToken  = "third-token-c3f5b2"
)

var testTokens = []string{firstToken, secondToken, thirdToken}

// scanForSecrets fails when text holds a secret value of the tests.
func scanForSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, v := range testTokens {
		if strings.Contains(text, v) {
			t.Errorf("%s holds a secret value: %q", what, text)
		}
	}
}

// capture is a logger whose lines the test reads, scanned for secrets at
// the end of the test.
func capture(t *testing.T) (*slog.Logger, *testkit.SyncBuffer) {
	buf := &testkit.SyncBuffer{}
	t.Cleanup(func() { scanForSecrets(t, "the log", buf.String()) })
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// changes records the values OnChange announces, and what Value returned
// while each was announced.
type changes struct {
	mu          sync.Mutex
	seen, while []string
}

func watchChanges(s *Secret) *changes {
	c := &changes{}
	s.OnChange(func(v string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.seen = append(c.seen, v)
		c.while = append(c.while, s.Value())
	})
	return c
}

func (c *changes) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(len(c.seen), " changes") // never the values: this may be printed
}

// TestSecretRotatesByRewrite: the file rewritten in place (truncate and
// write, as `echo > file` does) is the new value after Reload; OnChange
// saw it before Value returned it; the value without its trailing newline.
func TestSecretRotatesByRewrite(t *testing.T) {
	log, buf := capture(t)
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, firstToken+"\n")
	s, err := OpenSecretFile("approach2.token_file", path)
	if err != nil {
		t.Fatal(err)
	}
	ch := watchChanges(s)
	if s.Value() != firstToken {
		t.Fatal("the value read at start is not the file's content without its newline")
	}
	if s.Reload(log) {
		t.Fatal("Reload of an unchanged file reported a change")
	}
	writeFile(t, path, secondToken+"\n")
	if !s.Reload(log) || s.Value() != secondToken {
		t.Fatal("the rewritten file's value is not in use after Reload")
	}
	if len(ch.seen) != 1 || ch.seen[0] != secondToken || ch.while[0] != firstToken {
		t.Fatalf("OnChange: %s, want the new value announced once, while Value still returned the old one", ch)
	}
	if s.Previous(time.Hour) != firstToken || s.Previous(0) != "" {
		t.Fatal("Previous: want the replaced value within the grace, none with a grace of 0")
	}
	if !strings.Contains(buf.String(), "secret file changed") || !strings.Contains(buf.String(), path) {
		t.Fatalf("the change is not logged with the file's path: %s", buf)
	}
}

// TestSecretRotatesByRename: a new file renamed over the old one (a Vault
// agent template, most secret operators) is the new value.
func TestSecretRotatesByRename(t *testing.T) {
	log, _ := capture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	writeFile(t, path, firstToken)
	s, err := OpenSecretFile("projects.web.token_file", path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ".token.tmp"), secondToken)
	if err := os.Rename(filepath.Join(dir, ".token.tmp"), path); err != nil {
		t.Fatal(err)
	}
	if !s.Reload(log) || s.Value() != secondToken {
		t.Fatal("the renamed file's value is not in use after Reload")
	}
}

// k8sVolume lays out a directory as kubelet's atomic writer does for a
// Secret volume: <dir>/..<ts>/token holds the data, <dir>/..data links to
// that directory and <dir>/token links to ..data/token.
type k8sVolume struct {
	t   *testing.T
	dir string
	gen int
}

func newK8sVolume(t *testing.T, value string) *k8sVolume {
	v := &k8sVolume{t: t, dir: t.TempDir()}
	v.publish(value)
	if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(v.dir, "token")); err != nil {
		t.Fatal(err)
	}
	return v
}

// publish writes a new timestamped directory, points ..data_tmp at it and
// renames that over ..data (the atomic swap), then removes the old
// directory, as kubelet does.
func (v *k8sVolume) publish(value string) {
	v.gen++
	ts := fmt.Sprintf("..2026_12_06_09_00_%02d.%d", v.gen, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	writeFile(v.t, filepath.Join(v.dir, ts, "token"), value)
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(v.dir, "..data_tmp")); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			v.t.Fatal(err)
		}
	}
}

// TestSecretRotatesByKubernetesSymlinkSwap: a Secret volume updated by
// swapping its ..data symlink (the file's own path never changes, nor is
// it written) is seen by the watcher.
func TestSecretRotatesByKubernetesSymlinkSwap(t *testing.T) {
	log, _ := capture(t)
	vol := newK8sVolume(t, firstToken)
	path := filepath.Join(vol.dir, "token")
	s, err := OpenSecretFile("postgres.dsn_file", path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Value() != firstToken {
		t.Fatal("the value at start is not the projected file's")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); WatchSecrets(ctx, log, 10*time.Millisecond, s) }()
	defer func() { cancel(); <-done }()
	for _, next := range []string{secondToken, thirdToken} {
		vol.publish(next)
		testkit.Eventually(t, "the watcher sees the ..data swap", func() bool { return s.Value() == next })
	}
}

// TestSecretFileThatDisappearsKeepsTheLastValue: a file removed (or
// emptied) while the process runs keeps the last good value; the failed
// read is logged once, with the key, the path and the error, never the
// value; a file that comes back is read again.
func TestSecretFileThatDisappearsKeepsTheLastValue(t *testing.T) {
	log, buf := capture(t)
	path := filepath.Join(t.TempDir(), "password")
	writeFile(t, path, firstToken)
	s, err := OpenSecretFile("redis.password_file", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if s.Reload(log) || s.Value() != firstToken {
			t.Fatal("a missing file changed the value")
		}
	}
	logged := buf.String()
	if n := strings.Count(logged, "secret file unreadable"); n != 1 {
		t.Fatalf("the failing file is logged %d times over three reads, want once: %s", n, logged)
	}
	for _, want := range []string{"redis.password_file", path, "no such file"} {
		if !strings.Contains(logged, want) {
			t.Errorf("the failure's log line lacks %q: %s", want, logged)
		}
	}
	writeFile(t, path, "  \n")
	if s.Reload(log) || s.Value() != firstToken {
		t.Fatal("an empty file changed the value")
	}
	writeFile(t, path, secondToken)
	if !s.Reload(log) || s.Value() != secondToken {
		t.Fatal("the file that came back is not read")
	}
	if !strings.Contains(buf.String(), "secret file readable again") {
		t.Fatalf("the recovery is not logged: %s", buf)
	}
}

// TestSecretFileKeys: a *_file key gives the secret; a missing or empty
// file at start, or both keys of a secret, are configuration errors naming
// the key (and the path), never a value.
func TestSecretFileKeys(t *testing.T) {
	dir := t.TempDir()
	good, empty, missing := filepath.Join(dir, "token"), filepath.Join(dir, "empty"), filepath.Join(dir, "absent")
	writeFile(t, good, firstToken+"\n")
	writeFile(t, empty, "\n")
	env := func(k string) string {
		return map[string]string{"WEB_TOKEN": secondToken, "GITGATE_APPROACH2_TOKEN": thirdToken}[k]
	}
	project := func(keys string) string {
		return "projects:\n  web: {allowed_hosts: [github.com], " + keys + "}\n"
	}
	cfg, err := Load(writeConfig(t, project("token_file: "+good+", read_token_file: "+good)+
		"approach2: {token_env: '', token_file: "+good+"}\npostgres: {dsn_env: '', dsn_file: "+good+"}\nredis: {password_file: "+good+"}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Projects["web"]
	if p.CurrentToken() != firstToken || p.CurrentReadToken() != firstToken || p.TokenSecret.Path() != good {
		t.Fatal("projects.web.token_file is not the project's token")
	}
	if cur, prev := cfg.Approach2.CurrentTokens(); cur != firstToken || prev != "" {
		t.Fatal("approach2.token_file is not the service token")
	}
	if cfg.Postgres.CurrentDSN() != firstToken || len(cfg.Secrets()) != 5 {
		t.Fatalf("postgres.dsn_file, or Secrets: %d secrets, want 5", len(cfg.Secrets()))
	}
	if _, pw := cfg.Redis.CredentialsProvider()(); pw != firstToken {
		t.Fatal("redis.password_file is not the Redis password")
	}
	scanForSecrets(t, "the secrets' formatting", fmt.Sprintf("%v %+v %#v", cfg.Secrets(), cfg.Secrets(), cfg.Secrets()))

	cases := []struct{ yaml, want string }{
		{project("token_file: " + missing), "projects.web.token_file: open " + missing},
		{project("token_file: " + empty), "projects.web.token_file: " + empty + " is empty"},
		{project("token_env: WEB_TOKEN, token_file: " + good), "projects.web.token_env/projects.web.token_file: both give"},
		{project("read_token_env: OTHER, read_token_file: " + good), "projects.web.read_token_env/projects.web.read_token_file"},
		{"approach2: {token_file: " + good + "}", "approach2.token_env/approach2.token_file: both give"}, // its default variable is set
		{"sandbox: {provider: e2b, e2b: {api_key_env: E2B_KEY_X, api_key_file: " + good + "}}", "sandbox.e2b.api_key_env/sandbox.e2b.api_key_file"},
		{"canary: {ledger_dsn_file: " + missing + "}", "canary.ledger_dsn_file: open"},
		{"redis: {password_env: NO_SUCH_PASSWORD}", "redis.password_env: environment variable NO_SUCH_PASSWORD"},
		{"approach2: {token_grace: -1s}", "token_grace"},
	}
	for _, c := range cases {
		_, err := Load(writeConfig(t, c.yaml), env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: error %v, want one with %q", c.yaml, err, c.want)
			continue
		}
		scanForSecrets(t, "a configuration error", err.Error())
	}
	// Without its default variable set, the file alone is fine.
	if _, err := Load(writeConfig(t, "approach2: {token_file: "+good+"}"), func(string) string { return "" }); err != nil {
		t.Errorf("approach2.token_file with token_env at its default, its variable unset: %v", err)
	}
}

// TestDrillSecrets: the drill's admin and agent tokens come from either
// key, and the probe's is required.
func TestDrillSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin")
	writeFile(t, path, firstToken)
	cfg, err := Read(writeConfig(t, "drill: {admin_token_env: '', admin_token_file: "+path+", probe: {token_env: PROBE}}"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := cfg.DrillAdminToken(noEnv); err != nil || tok != firstToken {
		t.Fatalf("drill.admin_token_file: %v", err)
	}
	if _, err := cfg.DrillProbeToken(noEnv); err == nil || !strings.Contains(err.Error(), "drill.probe.token_env") {
		t.Fatalf("the probe's token unset: %v", err)
	}
	if tok, _ := cfg.DrillProbeToken(func(string) string { return secondToken }); tok != secondToken {
		t.Fatal("drill.probe.token_env's variable is not the probe's token")
	}
}

// TestSecretFormattingHidesTheValue: a Secret printed or logged shows its
// key and file only.
func TestSecretFormattingHidesTheValue(t *testing.T) {
	log, buf := capture(t)
	s := FixedSecret("approach2.token_env", firstToken)
	log.Info("formatting", "secret", s, "struct", struct{ S *Secret }{s})
	text := fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s) + buf.String()
	scanForSecrets(t, "formatting", text)
	if !strings.Contains(text, "approach2.token_env") {
		t.Fatalf("the formatting does not name the key: %s", text)
	}
	var none *Secret
	if none.Value() != "" || none.Reload(log) || none.Previous(time.Hour) != "" || none.String() != "secret(none)" {
		t.Fatal("a nil Secret has a value")
	}
}
