package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/backends/gitcmd"
	"github.com/gitgate/gitgate/canary"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/pgdsn"
)

// watchSecrets makes the redactor mask every configured secret, now and
// after each rotation (a new value is added before anything can use it),
// and re-reads the secret files while the process runs (configs.Secret).
// Consumers that read the current value at each use (see secrets.go's
// callers: git tokens, the Approach 2 token, the E2B key, the Redis
// password, the PostgreSQL DSNs of the journal and of the budget, branch
// and ledger stores) follow a rotation without a restart.
func (a *base) watchSecrets() {
	secrets := a.cfg.Secrets()
	for _, s := range secrets {
		a.redactor.Add(secretParts(s.Value())...)
		s.OnChange(func(v string) { a.redactor.Add(secretParts(v)...) })
	}
	a.runners = append(a.runners, func(ctx context.Context) { configs.WatchSecrets(ctx, a.log, 0, secrets...) })
}

// secretParts is a secret value and, for a DSN, the password it holds (a
// driver's error or a log line may quote it alone): in URL form
// (postgres://user:password@host) or key=value form (password=...).
func secretParts(v string) []string {
	parts := []string{v}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			parts = append(parts, pw)
		}
	}
	for _, f := range strings.Fields(v) {
		if pw, ok := strings.CutPrefix(f, "password="); ok {
			parts = append(parts, strings.Trim(pw, "'"))
		}
	}
	return parts
}

// liveProjects resolves projects for the git engine with the tokens their
// secrets hold at the moment of each operation: a rotated token file
// applies to the next clone, fetch or push.
type liveProjects map[string]configs.ProjectConfig

func (m liveProjects) Project(name string) (approach1.Project, bool) {
	p, ok := m[name]
	if !ok {
		return approach1.Project{}, false
	}
	return approach1.Project{Remotes: gitcmd.RemotePolicy{Schemes: p.AllowedSchemes, Hosts: p.AllowedHosts},
		Token: p.CurrentToken(), ReadToken: p.CurrentReadToken(), Username: p.TokenUsername,
		MaxRepoBytes: p.MaxRepoBytes, MaxSandboxBytes: p.MaxSandboxBytes}, true
}

// approach2Tokens reads the service token (and, in a rotation's grace
// window, the previous one) at every call.
func approach2Tokens(c configs.Approach2Config) approach2.Tokens { return c.CurrentTokens }

// journalDSN is the journal's Options.DSN: the DSN file's current content
// when postgres.dsn_file is set, else nil (a DSN from the environment never
// changes).
func journalDSN(p configs.PostgresConfig) func() string { return fileDSN(p.DSNSecret) }

// fileDSN is s's current value when a *_file key set it, else nil (a DSN
// from the environment never changes).
func fileDSN(s *configs.Secret) func() string {
	if s.Path() == "" {
		return nil
	}
	return s.Value
}

// followDSN is the option of a long-lived PostgreSQL store's pool whose
// DSN s holds: its new connections take the user and password the file
// holds now (internal/pgdsn). pool names the store in log.
func followDSN(pool string, s *configs.Secret, log *slog.Logger) pgdsn.Option {
	return pgdsn.Follow(pool, fileDSN(s), log)
}

// openLedgerDSNFile opens the PostgreSQL ledger whose DSN the file
// canary.ledger_dsn_file holds (report and canary advance: one short
// process, the file read once).
func openLedgerDSNFile(ctx context.Context, path string) (canary.Source, string, func(), error) {
	s, err := configs.OpenSecretFile("canary.ledger_dsn_file", path)
	if err != nil {
		return nil, "", nil, err
	}
	src, err := canary.OpenPGSource(ctx, s.Value())
	if err != nil {
		return nil, "", nil, fmt.Errorf("the ledger: %w", err)
	}
	return src, "postgresql (" + path + ")", src.Close, nil
}
