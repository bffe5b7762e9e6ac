package configs

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/spf13/viper"
)

// secretSource is one secret's pair of keys: the *_env key (the name of a
// variable) and its *_file sibling (a path), with their values.
type secretSource struct {
	envKey, fileKey string // full keys: projects.web.token_env, projects.web.token_file
	env, file       string // their values
	what            string // what the secret is, for errors: "the service token"
	required        bool   // a key that is set must yield a value
}

// resolve returns the secret the keys give: the file when file is set
// (read now: a missing or empty file is an error), else the variable env
// names when set and not empty, else nil. Setting the file and also the
// variable, or the file and an *_env key changed from its default, is
// refused: exactly one source gives a secret. With required, an *_env key
// whose variable is unset or empty is refused too.
func (s secretSource) resolve(getenv func(string) string) (*Secret, error) {
	if s.file != "" {
		if s.env != "" && (s.env != defaultString(s.envKey) || getenv(s.env) != "") {
			return nil, fmt.Errorf("config: %s/%s: both give %s (%s names variable %s); %w", s.envKey, s.fileKey, s.what, s.envKey, s.env, errBothSources)
		}
		sec, err := OpenSecretFile(s.fileKey, s.file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		return sec, nil
	}
	if s.env == "" {
		return nil, nil
	}
	v := getenv(s.env)
	if v == "" {
		if s.required {
			return nil, fmt.Errorf("config: %s: environment variable %s (%s) is not set (or empty); or set %s", s.envKey, s.env, s.what, s.fileKey)
		}
		return nil, nil
	}
	return FixedSecret(s.envKey, v), nil
}

// defaults is the embedded gitgate.yaml, read once: an *_env key left at
// its default does not conflict with its *_file sibling.
var defaults = sync.OnceValue(func() *viper.Viper {
	v := viper.New()
	v.SetConfigType("yaml")
	_ = v.ReadConfig(bytes.NewReader(DefaultYAML)) // TestDefaultConfig proves it parses
	return v
})

func defaultString(key string) string { return defaults().GetString(key) }

// resolveTokens resolves every secret of the configuration from its *_env
// or *_file key (secretSource.resolve), and sets the plain values (Token,
// DSN, ...) to the values at load time for the consumers that read them
// once.
func (c *Config) resolveTokens(getenv func(string) string) error {
	var err error
	set := func(dst **Secret, plain *string, src secretSource) {
		if err != nil {
			return
		}
		var s *Secret
		if s, err = src.resolve(getenv); err == nil {
			*dst = s
			*plain = s.Value()
		}
	}
	if e := &c.Sandbox.E2B; c.Sandbox.Provider == "e2b" {
		set(&e.APIKeySecret, &e.APIKey, secretSource{envKey: "sandbox.e2b.api_key_env", fileKey: "sandbox.e2b.api_key_file",
			env: e.APIKeyEnv, file: e.APIKeyFile, what: "the E2B API key"})
	}
	a := &c.Approach2
	set(&a.TokenSecret, &a.Token, secretSource{envKey: "approach2.token_env", fileKey: "approach2.token_file",
		env: a.TokenEnv, file: a.TokenFile, what: "the service token"})
	p := &c.Postgres
	set(&p.DSNSecret, &p.DSN, secretSource{envKey: "postgres.dsn_env", fileKey: "postgres.dsn_file",
		env: p.DSNEnv, file: p.DSNFile, what: "the journal's PostgreSQL DSN"})
	l := &c.Canary
	set(&l.LedgerDSNSecret, &l.LedgerDSN, secretSource{envKey: "canary.ledger_dsn_env", fileKey: "canary.ledger_dsn_file",
		env: l.LedgerDSNEnv, file: l.LedgerDSNFile, what: "the ledger's PostgreSQL DSN", required: true})
	r := &c.Redis
	set(&r.PasswordSecret, &r.Password, secretSource{envKey: "redis.password_env", fileKey: "redis.password_file",
		env: r.PasswordEnv, file: r.PasswordFile, what: "the Redis password", required: true})
	for _, name := range sortedKeys(c.Projects) {
		p := c.Projects[name]
		key := "projects." + name
		set(&p.TokenSecret, &p.Token, secretSource{envKey: key + ".token_env", fileKey: key + ".token_file",
			env: p.TokenEnv, file: p.TokenFile, what: "the project's git token", required: true})
		set(&p.ReadTokenSecret, &p.ReadToken, secretSource{envKey: key + ".read_token_env", fileKey: key + ".read_token_file",
			env: p.ReadTokenEnv, file: p.ReadTokenFile, what: "the project's read-only git token", required: true})
		c.Projects[name] = p
	}
	return err
}

// Secrets lists the configured secrets (those a key set), for the watcher
// (WatchSecrets) and for redaction.
func (c *Config) Secrets() []*Secret {
	all := []*Secret{c.Sandbox.E2B.APIKeySecret, c.Approach2.TokenSecret, c.Postgres.DSNSecret, c.Canary.LedgerDSNSecret,
		c.Redis.PasswordSecret}
	for _, name := range sortedKeys(c.Projects) {
		all = append(all, c.Projects[name].TokenSecret, c.Projects[name].ReadTokenSecret)
	}
	out := all[:0]
	for _, s := range all {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}
