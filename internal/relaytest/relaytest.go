// Package relaytest runs a git relay (backends/relay) for tests of the
// backends that use it.
package relaytest

import (
	"encoding/base64"
	"github.com/gitgate/gitgate/backends"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/backends/approach1"
	"github.com/gitgate/gitgate/backends/lock"
	"github.com/gitgate/gitgate/backends/relay"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/gitgate/gitgate/backends/sandbox/local"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// Relay is a git relay (backends/relay) on loopback holding env's
// projects' tokens, with what it relayed.
type Relay struct {
	URL   string
	Store *relay.MemoryStore
	Meter *relay.Meter
	mu    sync.Mutex
	ev    []relay.Event
}

// Events returns what the relay relayed so far.
func (r *Relay) Events() []relay.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relay.Event(nil), r.ev...)
}

// StartRelay starts a relay for env's projects until the test ends.
func StartRelay(t testing.TB, env *backendtest.Env) *Relay {
	t.Helper()
	r := &Relay{Store: relay.NewMemoryStore(), Meter: relay.NewMeter()}
	projects := map[string]backendtest.Project{env.Project.Name: env.Project, env.StrangerProject.Name: env.StrangerProject}
	h, err := relay.New(relay.Config{Store: r.Store, Meter: r.Meter,
		Credentials: func(project string, dir relay.Direction) (string, string, bool) {
			p, ok := projects[project]
			if dir == relay.Fetch && p.ReadToken != "" {
				return "x-access-token", p.ReadToken, ok
			}
			return "x-access-token", p.Token, ok
		},
		Report: func(e relay.Event) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ev = append(r.ev, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// NewRelayedApproach1 is backendtest.NewApproach1 with every remote command going
// through a relay it starts (and returns): git in the sandboxes never gets
// a token. gitPath, if not "", is the git the sandboxes run.
func NewRelayedApproach1(t testing.TB, env *backendtest.Env, gitPath string) (*approach1.Executor, *Relay) {
	t.Helper()
	return newRelayed(t, env, gitPath, &lock.Memory{}, 0)
}

// NewRelayedApproach1Priced is NewRelayedApproach1 pricing the relayed
// bytes at usdPerGiB into each call's cost.
func NewRelayedApproach1Priced(t testing.TB, env *backendtest.Env, usdPerGiB float64) (*approach1.Executor, *Relay) {
	t.Helper()
	return newRelayed(t, env, "", &lock.Memory{}, usdPerGiB)
}

// NewRelayedApproach1Once is backendtest.NewApproach1Once through a relay:
// the engine of NewRelayedApproach1 behind the exactly-once layer.
func NewRelayedApproach1Once(t testing.TB, env *backendtest.Env, gitPath string) (backends.Executor, *Relay) {
	t.Helper()
	locker := backendtest.NewFileLocker(t)
	engine, r := newRelayed(t, env, gitPath, lock.Reentrant(locker), 0)
	return backendtest.WithOnce(t, engine, locker, backendtest.NewDirJournal(t)), r
}

func newRelayed(t testing.TB, env *backendtest.Env, gitPath string, locker lock.Locker, usdPerGiB float64) (*approach1.Executor, *Relay) {
	t.Helper()
	r := StartRelay(t, env)
	dir := t.TempDir()
	provider, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env.SandboxRoots = append(env.SandboxRoots, dir)
	ex := backendtest.NewEngineWith(t, env, sandbox.ManagerConfig{Provider: provider}, locker, func(c *approach1.Config) {
		c.Relay = &approach1.RelayConfig{Store: r.Store, URL: r.URL, Meter: r.Meter, EgressUSDPerGiB: usdPerGiB}
		if gitPath != "" {
			c.GitPath = gitPath
		}
	})
	return ex, r
}

// GitRecorder writes a git wrapper (for git.path or the engine's GitPath)
// that appends every invocation's argv and environment to a log outside
// the sandboxes, then runs /usr/bin/git; it returns the wrapper's path and
// the log's.
func GitRecorder(t testing.TB) (wrapper, log string) {
	t.Helper()
	dir := t.TempDir()
	log, wrapper = filepath.Join(dir, "git-processes.log"), filepath.Join(dir, "git")
	script := "#!/bin/sh\n{ printf 'argv:'; printf ' %s' \"$@\"; printf '\\nenv:\\n'; /usr/bin/env; } >> " + log + "\nexec /usr/bin/git \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, log
}

// TokenForms are the ways tokens can appear where they must not: plain,
// URL-encoded, and in base64 of user:token (HTTP Basic).
func TokenForms(user string, tokens ...string) []string {
	var forms []string
	for _, token := range tokens {
		forms = append(forms, token, url.QueryEscape(token), base64.StdEncoding.EncodeToString([]byte(user+":"+token)))
	}
	return forms
}
