package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gitgate/gitgate/configs"
)

// TestFollowDSNFile: the stores' pool option follows a DSN that a *_file
// key set (a new connection takes the file's user and password after it
// changes), and leaves a DSN from the environment (no file) fixed.
func TestFollowDSNFile(t *testing.T) {
	const before, after = "postgres://gitgate:pw-before-4d2e@db:5432/gitgate", "postgres://gitgate2:pw-after-9a1b@db:5432/gitgate"
	path := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(path, []byte(before+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := configs.OpenSecretFile("postgres.dsn_file", path)
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(configs.LogConfig{Level: "error"}, os.Stderr, nil)
	cfg, err := pgxpool.ParseConfig(before)
	if err != nil {
		t.Fatal(err)
	}
	followDSN("test", s, log)(cfg)
	if err := os.WriteFile(path, []byte(after+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Reload(log)
	cc := cfg.ConnConfig.Copy()
	if cfg.BeforeConnect == nil {
		t.Fatal("a DSN from a file: the pool does not follow it")
	}
	if err := cfg.BeforeConnect(context.Background(), cc); err != nil || cc.User != "gitgate2" || cc.Password != "pw-after-9a1b" {
		t.Fatalf("a new connection after the file changed: user %q, the new password %v (err %v)", cc.User, cc.Password == "pw-after-9a1b", err)
	}

	fixed, err := pgxpool.ParseConfig(before)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []*configs.Secret{configs.FixedSecret("postgres.dsn_env", before), nil} { // from the environment, or unset
		followDSN("test", env, log)(fixed)
		if fixed.BeforeConnect != nil {
			t.Fatalf("a DSN not from a file (%v): the pool was given a BeforeConnect", env)
		}
	}
}
