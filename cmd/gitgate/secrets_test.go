package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// TestSecretPartsOfADSN: a DSN's password is redacted on its own too, in
// URL and key=value form.
func TestSecretPartsOfADSN(t *testing.T) {
	for dsn, pw := range map[string]string{
		"postgres://gitgate:pw-url-7f3a9c@db:5432/gitgate?sslmode=require": "pw-url-7f3a9c",
		"host=db user=gitgate password='pw-kv-1b2c3d' dbname=gitgate":      "pw-kv-1b2c3d",
	} {
		if parts := secretParts(dsn); !slices.Contains(parts, dsn) || !slices.Contains(parts, pw) {
			t.Errorf("secretParts(%q) lacks the DSN or its password", dsn)
		}
	}
}

// TestLiveProjectsReadTheTokenAtEachCall: the engine's projects return
// the token the project's secret holds at the moment of the call.
func TestLiveProjectsReadTheTokenAtEachCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("live-token-before-1a2b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := configs.OpenSecretFile("projects.web.token_file", path)
	if err != nil {
		t.Fatal(err)
	}
	projects := liveProjects{"web": {AllowedHosts: []string{"h"}, TokenSecret: s, ReadToken: "fixed-read-token-3c4d"}}
	if p, ok := projects.Project("web"); !ok || p.Token != "live-token-before-1a2b" || p.ReadToken != "fixed-read-token-3c4d" {
		t.Fatal("the project's tokens at start")
	}
	if err := os.WriteFile(path, []byte("live-token-after-5e6f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Reload(newLogger(configs.LogConfig{Level: "error"}, os.Stderr, nil))
	if p, _ := projects.Project("web"); p.Token != "live-token-after-5e6f" {
		t.Fatal("the project's token after the file changed")
	}
	if _, ok := projects.Project("nope"); ok {
		t.Fatal("an unconfigured project resolves")
	}
}

// TestLedgerDSNFile: report and canary advance open the PostgreSQL ledger
// whose DSN canary.ledger_dsn_file holds, naming the file (never the DSN).
func TestLedgerDSNFile(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	path := filepath.Join(t.TempDir(), "ledger-dsn")
	if err := os.WriteFile(path, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &configs.Config{Canary: configs.CanaryConfig{LedgerDSNFile: path}}
	_, what, closeSrc, err := openLedger(t.Context(), cfg, "", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSrc()
	if what != "postgresql ("+path+")" || strings.Contains(what, dsn) {
		t.Fatalf("the ledger is described as %q", what)
	}
	cfg.Canary.LedgerDSNFile = filepath.Join(t.TempDir(), "absent")
	if _, _, _, err := openLedger(t.Context(), cfg, "", "", "", false); err == nil || !strings.Contains(err.Error(), "canary.ledger_dsn_file") {
		t.Fatalf("a missing DSN file: %v", err)
	}
}
