package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
	"github.com/gitgate/gitgate/gateway"
	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/gitremote"
	"github.com/gitgate/gitgate/internal/testkit"
)

// Secrets the fleet is configured with; the test scans every process's
// log for them.
const (
	gitToken     = "ghp_fleetSECRETtoken0123456789abcdefABCD"
	serviceToken = "gga_fleet_service_token_0123456789abcdef"
	adminToken   = "gga_fleet_admin_token_0123456789abcdef"
)

// agentToken is agent i's bearer token.
func agentToken(i int) string { return fmt.Sprintf("gga_fleet_agent_%03d_0123456789abcdef", i) }

// agentName is agent i's name in the configuration.
func agentName(i int) string { return fmt.Sprintf("a%03d", i) }

// Timings of the fleet's processes: drains long enough for HAProxy's
// health checks to turn a gateway away, short enough for a rolling
// restart of five processes to take seconds. The drain timeout bounds the
// calls in flight at a SIGTERM, so it must outlast the longest of them, as
// in production: at 100 agents on two cores a clone's P95 is about 24 s
// (a 20 s bound cut one clone of a run, answered canceled), so 60 s.
const (
	gatewayDrainDelay = "1500ms"
	serviceDrainDelay = "1s"
	drainTimeout      = "60s"
	lockTTL           = "10s"
)

// canaryRoute is every operation's share on Approach 2, in percent.
const canaryRoute = 50

// gatewayProc is one `gitgate serve` of the fleet, on fixed addresses so
// that it comes back where HAProxy expects it.
type gatewayProc struct {
	*proc
	name           string // its server name in HAProxy
	mcpAddr, admin string // host:port
	adminURL       string
}

// serviceProc is one `gitgate backend` of the fleet.
type serviceProc struct {
	*proc
	addr, admin string
}

// world is the fleet and what it runs on.
type world struct {
	t        *testing.T
	remote   *gitremote.Server
	repoURL  string
	sentinel *backendtest.Sentinel
	pgDSN    string // the journal's schema, shared by gateways and services
	// ledgerDSN is the canary ledger's schema, fed by every gateway.
	ledgerDSN  string
	flagPath   string
	flagSource *proc
	syncAddr   string
	services   []*serviceProc
	gateways   []*gatewayProc
	lb         *HAProxy
	mcpURL     string // the agents' URL: HAProxy's frontend
	agents     int
	env        []string // every child's environment
	dir        string
	prefix     string // the fleet's Redis key prefix (its Redis is its own: the prefix only keeps keys recognisable)
}

// newWorld starts the whole fleet for agents agents and returns once every
// gateway is ready, UP in HAProxy and applying the flag source.
func newWorld(t *testing.T, agents int) *world {
	t.Helper()
	began := time.Now()
	gitgateBinary(t) // built first: the processes below start at once
	built := time.Now()
	var b [4]byte
	_, _ = rand.Read(b[:])
	w := &world{t: t, agents: agents, dir: t.TempDir(), prefix: "gitgate-fleet:" + hex.EncodeToString(b[:]) + ":"}

	// The remote.
	srv, err := gitremote.New(gitremote.Config{Root: filepath.Join(w.dir, "remote"), Username: "x-access-token", Token: gitToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.CreateRepo(t.Context(), "demo", map[string]string{"README.md": "# demo\n", "src/main.go": "package main\n"}); err != nil {
		t.Fatal(err)
	}
	w.remote, w.repoURL = srv, srv.RepoURL("demo")

	// Redis with Sentinel, PostgreSQL.
	w.sentinel = backendtest.StartSentinel(t)
	w.pgDSN = backendtest.PostgresDSN(t)
	w.ledgerDSN = backendtest.PostgresDSN(t)
	w.env = []string{"PATH=/usr/bin:/bin", "HOME=" + filepath.Join(w.dir, "home"), "LC_ALL=C",
		"FLEET_GIT_TOKEN=" + gitToken, "FLEET_SERVICE_TOKEN=" + serviceToken,
		"FLEET_PG_DSN=" + w.pgDSN, "FLEET_LEDGER_DSN=" + w.ledgerDSN}

	// The flag source: every operation at 50 %.
	f := flags.NewFile(backends.OpNames())
	for _, op := range backends.OpNames() {
		if err := f.SetRoute(op, canaryRoute); err != nil {
			t.Fatal(err)
		}
	}
	w.flagPath = filepath.Join(w.dir, "flags.json")
	if err := f.Save(w.flagPath); err != nil {
		t.Fatal(err)
	}
	w.startFlagSource()

	// Addresses first: HAProxy needs the gateways', the gateways need
	// HAProxy's (the Host header they accept) and the services'.
	for range 2 {
		w.services = append(w.services, &serviceProc{addr: freeAddr(t), admin: freeAddr(t)})
	}
	var lbBackends []Backend
	for i := range 3 {
		g := &gatewayProc{name: fmt.Sprintf("gw%d", i), mcpAddr: freeAddr(t), admin: freeAddr(t)}
		g.adminURL = "http://" + g.admin
		w.gateways = append(w.gateways, g)
		lbBackends = append(lbBackends, Backend{Name: g.name, Addr: g.mcpAddr, CheckAddr: g.admin})
	}
	w.lb = StartHAProxy(t, lbBackends)
	w.mcpURL = strings.TrimSuffix(w.lb.URL, "/") + "/mcp"

	for i, s := range w.services {
		path := w.writeConfig(fmt.Sprintf("service%d.yaml", i), w.serviceYAML(i))
		s.proc = newProc(t, fmt.Sprintf("service%d", i), w.env, "backend", "--config", path)
		s.start()
	}
	for i, s := range w.services {
		waitServing(t, fmt.Sprintf("service %d", i), s.addr)
	}
	// One after the other: gateways starting at once race to create
	// their PostgreSQL tables (CREATE TABLE IF NOT EXISTS is not safe
	// against a concurrent one), and the loser exits.
	for i, g := range w.gateways {
		path := w.writeConfig(fmt.Sprintf("gateway%d.yaml", i), w.gatewayYAML(i))
		g.proc = newProc(t, g.name, w.env, "serve", "--config", path)
		g.start()
		w.waitGatewayUp(i)
	}
	for i := range w.gateways {
		testkit.EventuallyNil(t, fmt.Sprintf("gateway %d applies the flag source at %d %%", i, canaryRoute), func() error {
			return w.following(i, canaryRoute, false)
		})
	}
	t.Cleanup(w.scanForSecrets)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range w.procs() {
				t.Logf("the last lines %s logged:\n%s", p.name, p.tail(15))
			}
		}
	})
	t.Logf("gitgate built in %s; fleet started in %s: 3 gateways behind HAProxy (%s), 2 services, flag source %s, Redis Sentinel %v, %d agents",
		built.Sub(began).Round(time.Millisecond), time.Since(built).Round(time.Millisecond), w.lb.URL, w.syncAddr, w.sentinel.Addrs, agents)
	return w
}

// procs are the fleet's own processes.
func (w *world) procs() []*proc {
	out := []*proc{w.flagSource}
	for _, g := range w.gateways {
		out = append(out, g.proc)
	}
	for _, s := range w.services {
		out = append(out, s.proc)
	}
	return out
}

// startFlagSource runs `gitgate flags serve` on a free port and reads its
// address from the line it prints.
func (w *world) startFlagSource() {
	t := w.t
	w.flagSource = newProc(t, "flags", w.env, "flags", "serve", "--file", w.flagPath, "--listen", "127.0.0.1:0")
	w.flagSource.start()
	served := regexp.MustCompile(`as a flagd sync source on (\S+)`)
	testkit.EventuallyNil(t, "the flag source says where it serves", func() error {
		if m := served.FindStringSubmatch(w.flagSource.logText()); m != nil {
			w.syncAddr = m[1]
			return nil
		}
		if done, err := w.flagSource.exited(); done {
			return fmt.Errorf("gitgate flags serve exited (%w): %s", err, w.flagSource.tail(5))
		}
		return fmt.Errorf("not yet: %q", w.flagSource.tail(3))
	})
}

func (w *world) writeConfig(name, yaml string) string {
	path := filepath.Join(w.dir, name)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// commonYAML is what gateways and services share: the sandbox directory
// and vault, the project and its agents, Redis through Sentinel,
// PostgreSQL (the journal) and the services' token.
func (w *world) commonYAML(stateDir string) string {
	u, _ := url.Parse(w.remote.URL())
	var agents strings.Builder
	for i := range w.agents {
		fmt.Fprintf(&agents, "  - {name: %s, project: alpha, token_sha256: %s, author_name: Agent %d, author_email: %s@agents.example}\n",
			agentName(i), gateway.HashToken(agentToken(i)), i, agentName(i))
	}
	var sentinels []string
	for _, a := range w.sentinel.Addrs {
		sentinels = append(sentinels, fmt.Sprintf("%q", a))
	}
	return fmt.Sprintf(`state_dir: %q
log: {level: info, format: json}
sandbox:
  local: {dir: %q, shared: true}
  vault: {dir: %q}
  pool: {min_idle: 1, max_size: 16}
git: {allow_http: true}
projects:
  alpha: {allowed_hosts: [%q], allowed_schemes: [http], token_env: FLEET_GIT_TOKEN, token_username: x-access-token}
agents:
%sredis:
  %s
  prefix: %q
  lock_ttl: %s
postgres: {dsn_env: FLEET_PG_DSN}
`, stateDir, filepath.Join(w.dir, "sandboxes"), filepath.Join(w.dir, "vault"), u.Host, agents.String(),
		w.redisYAML(sentinels), w.prefix, lockTTL)
}

// redisYAML locates Redis through the Sentinel set.
func (w *world) redisYAML(sentinels []string) string {
	return fmt.Sprintf("sentinel: {master_name: %q, addrs: [%s]}", w.sentinel.MasterName, strings.Join(sentinels, ", "))
}

func (w *world) serviceYAML(i int) string {
	s := w.services[i]
	return w.commonYAML(filepath.Join(w.dir, fmt.Sprintf("service%d.state", i))) + fmt.Sprintf(`approach2:
  listen: %q
  admin: %q
  token_env: FLEET_SERVICE_TOKEN
  insecure: true
  drain_delay: %s
  drain_timeout: %s
`, s.addr, s.admin, serviceDrainDelay, drainTimeout)
}

func (w *world) gatewayYAML(i int) string {
	g := w.gateways[i]
	lb, _ := url.Parse(w.lb.URL)
	var targets []string
	for _, s := range w.services {
		targets = append(targets, fmt.Sprintf("%q", s.addr))
	}
	return w.commonYAML(filepath.Join(w.dir, fmt.Sprintf("gateway%d.state", i))) + fmt.Sprintf(`listen:
  mcp: %q
  admin: %q
  admin_token_sha256: %s
  drain_delay: %s
  drain_timeout: %s
mcp:
  allowed_hosts: [%q]
  session_store: redis
flags:
  sync_addr: %q
  override_path: %q
canary:
  ledger_dsn_env: FLEET_LEDGER_DSN
  shadow_budget: 2m
  judge:
    error_floor: {abs: 1}
    latency_floor: {abs: 24h}
    max_mismatch_rate: 0.999999
approach2:
  targets: [%s]
  token_env: FLEET_SERVICE_TOKEN
  insecure: true
`, g.mcpAddr, g.admin, gateway.HashToken(adminToken), gatewayDrainDelay, drainTimeout, lb.Host, w.syncAddr,
		filepath.Join(w.dir, fmt.Sprintf("gateway%d.override.json", i)), strings.Join(targets, ", "))
}

// waitGatewayUp waits until gateway i answers /readyz and HAProxy has it
// UP.
func (w *world) waitGatewayUp(i int) {
	t, g := w.t, w.gateways[i]
	testkit.EventuallyNil(t, g.name+" is ready", func() error {
		if done, err := g.exited(); done {
			t.Fatalf("%s exited (%v): %s", g.name, err, g.tail(10))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return admin.NewClient(g.adminURL, "").Ready(ctx)
	})
	w.waitLBState(g.name, "UP")
}

// waitLBState waits until HAProxy shows server name in state (UP, DOWN...).
func (w *world) waitLBState(name, state string) {
	testkit.EventuallyNil(w.t, "HAProxy has "+name+" "+state, func() error {
		ctx, cancel := context.WithTimeout(w.t.Context(), 5*time.Second)
		defer cancel()
		states, err := w.lb.ServerStates(ctx)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(states[name], state) {
			return fmt.Errorf("%s is %q", name, states[name])
		}
		return nil
	})
}

// status reads gateway i's /status.
func (w *world) status(ctx context.Context, i int) (admin.Status, error) {
	return admin.NewClient(w.gateways[i].adminURL, "").Status(ctx)
}

// following says why gateway i does not apply the sync source with every
// operation at route % and the kill switch as kill, or nil when it does.
func (w *world) following(i, route int, kill bool) error {
	ctx, cancel := context.WithTimeout(w.t.Context(), 5*time.Second)
	defer cancel()
	st, err := w.status(ctx, i)
	if err != nil {
		return err
	}
	if st.Source != "sync" || st.FailSafe != "" || st.Kill.Effective != kill {
		return fmt.Errorf("source %q, fail safe %q, kill switch effective %v", st.Source, st.FailSafe, st.Kill.Effective)
	}
	want := float64(route) / 100
	for _, o := range st.Ops {
		if o.Route.Configured != want {
			return fmt.Errorf("%s: %+v, want %v configured", o.Op, o.Route, want)
		}
	}
	return nil
}

// scanForSecrets fails the test if a secret appears in any process's log.
func (w *world) scanForSecrets() {
	secrets := []string{gitToken, serviceToken, adminToken, w.pgDSN, w.ledgerDSN}
	for i := range w.agents {
		secrets = append(secrets, agentToken(i))
	}
	total := 0
	for _, p := range w.procs() {
		text := p.logText()
		total += len(text)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				w.t.Errorf("%s logged a secret (%.12s…)", p.name, s)
			}
		}
	}
	if total == 0 {
		w.t.Error("the fleet logged nothing: the secret scan would be vacuous")
	}
}

// keepLogs copies every process's logs under GITGATE_FLEET_OUT/logs, when
// it is set.
func (w *world) keepLogs() {
	dir := os.Getenv("GITGATE_FLEET_OUT")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Errorf("GITGATE_FLEET_OUT: %v", err)
		return
	}
	for _, p := range w.procs() {
		if err := os.WriteFile(filepath.Join(dir, p.name+".log"), []byte(p.logText()), 0o644); err != nil { //nolint:gosec // logs without secrets (scanForSecrets)
			w.t.Errorf("GITGATE_FLEET_OUT: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "haproxy.log"), []byte(w.lb.Logs()), 0o644); err != nil { //nolint:gosec // request lines
		w.t.Errorf("GITGATE_FLEET_OUT: %v", err)
	}
}
