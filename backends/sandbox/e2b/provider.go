package e2b

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
	"github.com/prometheus/client_golang/prometheus"
)

// Metadata keys gitgate puts on its sandboxes.
const (
	metaApp     = "gitgate"
	metaProject = "gitgate.project"
	metaAgent   = "gitgate.agent"
)

// ProviderConfig configures the E2B sandbox provider.
type ProviderConfig struct {
	API *API // required
	// EnvdURL is the proxy envd is reached through, e.g.
	// "https://sandbox.e2b.app". Required.
	EnvdURL string
	// Template is the sandbox template (ID or alias). Required.
	Template string
	// User runs the commands. If empty, "user" (E2B's base template).
	User string
	// Root is the directory gitgate keeps its files under in each
	// sandbox. If empty, "/home/user/gitgate".
	Root string
	// Lifetime is the timeout a sandbox is created with (seconds, always
	// sent); SetTTL extends it. If zero, one hour.
	Lifetime time.Duration
	// Keepalive for command streams. If zero, 50 s.
	Keepalive time.Duration
	// VCPUSecondUSD and GiBSecondUSD price a running sandbox. If zero,
	// E2B's published prices ($0.000014 per vCPU-second, $0.0000045 per
	// GiB-second).
	VCPUSecondUSD, GiBSecondUSD float64
	// Registerer receives the lifetime and cost metrics. If nil, not
	// registered.
	Registerer prometheus.Registerer
	// HTTP is the client for envd. If nil, http.DefaultClient.
	HTTP *http.Client
	// KillGrace is how long a command's process group has between SIGTERM
	// and SIGKILL, at its deadline or when its call is cancelled. If zero,
	// 5 s.
	KillGrace time.Duration
	// StopWait is how much longer than KillGrace a cancelled call waits
	// for envd to confirm its command gone. If zero, 10 s.
	StopWait time.Duration
	// Logger receives the provider's errors of configuration. If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Default prices (E2B's published ones, per second).
const (
	DefaultVCPUSecondUSD = 0.000014
	DefaultGiBSecondUSD  = 0.0000045
)

// Provider runs sandboxes in E2B. Safe for concurrent use.
type Provider struct {
	cfg ProviderConfig
	// domain is the E2B domain EnvdURL serves ("" when EnvdURL is not
	// https://sandbox.<domain>: then it serves every sandbox).
	domain string

	mu    sync.Mutex
	known map[string]known // sandbox id → what envd and the cost model need
	// pending holds, per sandbox, the commands that could not be confirmed
	// stopped: nothing more runs there until they are.
	pending map[string][]*stillRunning
	// userErr, once set, is the operator's error of configuration
	// (sandbox.e2b.user names no user of the template): no sandbox is
	// created and no command run while it stands.
	userErr error

	lifetime, cost prometheus.Counter
	requests       *requestMetrics // envd's requests (nil: not measured)

	// secrets holds, per sandbox, the secret files written (WriteSecret):
	// their bytes until a command that names them carries them, then
	// nothing, until RemoveAll of their path forgets them.
	secrets map[string]map[string][]byte
	// unsentOwner holds, per sandbox made here, the owner file RecordOwner
	// left for the next command to carry (see RecordOwner), until an upload
	// carrying it succeeded.
	unsentOwner map[string]*ownerUpload
	// cleanups are the removals running after their call returned.
	cleanups sync.WaitGroup
}

type known struct {
	info     sandbox.Info
	envdURL  string
	token    string
	cpus     int
	memoryMB int
	// madeHere: this Provider created the sandbox (Create), in this
	// process; one made without an owner is a warm sandbox of this
	// process's pool, which no other process hands out.
	madeHere bool
}

// perSecond is what k costs per second of life.
func (p *Provider) perSecond(k known) float64 {
	return float64(k.cpus)*p.cfg.VCPUSecondUSD + float64(k.memoryMB)/1024*p.cfg.GiBSecondUSD
}

var (
	_ sandbox.Provider = (*Provider)(nil)
	_ sandbox.Coster   = (*Provider)(nil)
)

// NewProvider returns a provider.
func NewProvider(cfg ProviderConfig) (*Provider, error) {
	if cfg.API == nil || cfg.EnvdURL == "" || cfg.Template == "" {
		return nil, errors.New("e2b: the provider needs the API, the envd URL and a template")
	}
	if cfg.User == "" {
		cfg.User = "user"
	}
	if cfg.Root == "" {
		cfg.Root = "/home/user/gitgate"
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = time.Hour
	}
	if cfg.VCPUSecondUSD <= 0 {
		cfg.VCPUSecondUSD = DefaultVCPUSecondUSD
	}
	if cfg.GiBSecondUSD <= 0 {
		cfg.GiBSecondUSD = DefaultGiBSecondUSD
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Provider{cfg: cfg, domain: domainOf(cfg.EnvdURL), known: map[string]known{}, pending: map[string][]*stillRunning{},
		secrets: map[string]map[string][]byte{}, unsentOwner: map[string]*ownerUpload{},
		lifetime: prometheus.NewCounter(prometheus.CounterOpts{Name: "gitgate_e2b_sandbox_seconds_total",
			Help: "Lifetime of the E2B sandboxes gitgate destroyed, in seconds (what E2B bills)."}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{Name: "gitgate_e2b_cost_usd_total",
			Help: "Cost of the E2B sandboxes gitgate destroyed, in US dollars, from their vCPUs and memory at the configured prices."}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(p.lifetime, p.cost)
		p.requests = newRequestMetrics(cfg.Registerer)
		if cfg.API.metrics == nil { // the API's requests count with the provider's
			cfg.API.metrics = p.requests
		}
	}
	return p, nil
}

// CostPerSecond implements sandbox.Coster.
func (p *Provider) CostPerSecond(id string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.perSecond(p.known[id])
}

// Name returns "e2b".
func (p *Provider) Name() string { return "e2b" }

func (p *Provider) envd(k known) *Envd {
	return &Envd{BaseURL: k.envdURL, SandboxID: k.info.ID, AccessToken: k.token, User: p.cfg.User, HTTP: p.cfg.HTTP,
		Keepalive: p.cfg.Keepalive, KillGrace: p.cfg.KillGrace, StopWait: p.cfg.StopWait, metrics: p.requests}
}

// sharedHostDomains are the domains whose sandboxes E2B's SDKs reach
// through the shared host sandbox.<domain> (js-sdk connectionConfig.ts,
// supportedDomains); on other domains they use <port>-<id>.<domain>.
var sharedHostDomains = []string{"e2b.app", "e2b.dev", "e2b.pro", "e2b-staging.dev"}

// domainOf is the domain of an envd URL of the form
// <scheme>://sandbox.<domain>, else "".
func domainOf(envdURL string) string {
	u, err := url.Parse(envdURL)
	if err != nil {
		return ""
	}
	d, _ := strings.CutPrefix(u.Hostname(), "sandbox.")
	if d == u.Hostname() {
		return ""
	}
	return d
}

// envdURLFor is where envd of sandbox id is reached, given the domain E2B
// named for it in its create or get answer. As in E2B's SDKs: the
// sandbox's own domain when named (a URL given that is not
// sandbox.<domain> overrides it, as the SDKs' sandbox URL does), else the
// configured one.
func (p *Provider) envdURLFor(id string, domain *string) string {
	if p.domain == "" || domain == nil || *domain == "" || *domain == p.domain {
		return p.cfg.EnvdURL
	}
	scheme := "https"
	if u, err := url.Parse(p.cfg.EnvdURL); err == nil && u.Scheme != "" {
		scheme = u.Scheme
	}
	if slices.Contains(sharedHostDomains, *domain) {
		return scheme + "://sandbox." + *domain
	}
	return scheme + "://" + envdPort + "-" + id + "." + *domain
}

// badUser turns envd's refusal of the configured user into the operator's
// error of configuration, remembered so that no sandbox is created (and
// killed) per call for nothing, and logged once. Its category is
// unavailable, not unauthenticated: the agent's credentials are fine, the
// agent can do nothing about it, and the backend cannot serve anyone until
// an operator acts, which is what breakers must count (a client mistake
// would not count). It is marked not started: no command ran.
func (p *Provider) badUser(err error) error {
	if !errors.Is(err, errBadUser) {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.userErr == nil {
		p.userErr = backends.NotStarted(backends.Errorf(backends.Unavailable,
			"e2b: the sandbox user %q (configuration key sandbox.e2b.user) does not exist in template %q (envd: %s); "+
				"an operator must set sandbox.e2b.user to a user of the template (E2B's base template has \"user\") and restart gitgate",
			p.cfg.User, p.cfg.Template, envdMessage(err)))
		p.cfg.Logger.Error("e2b: sandbox.e2b.user names no user of the template; no sandbox is created until the configuration is fixed",
			"user", p.cfg.User, "template", p.cfg.Template, "err", err)
	}
	return p.userErr
}

// envdMessage is what envd said about the user in err.
func envdMessage(err error) string {
	msg := backends.MessageOf(err)
	for _, said := range []string{"invalid username", "invalid default user", "error looking up user"} {
		if i := strings.Index(msg, said); i >= 0 {
			return msg[i:]
		}
	}
	return msg
}

// check records what an error of envd says: a configuration error, a
// command that may still run, a sandbox that is gone.
func (p *Provider) check(id string, err error) error {
	if err == nil {
		return nil
	}
	var sr *stillRunning
	if errors.As(err, &sr) {
		p.mu.Lock()
		p.pending[id] = append(p.pending[id], sr)
		p.mu.Unlock()
	}
	return p.gone(id, p.badUser(err))
}

// ready fails when nothing may run in the sandbox: the configuration is
// wrong, or an earlier command there could not be confirmed stopped (it is
// tried again now).
func (p *Provider) ready(ctx context.Context, k known) error {
	p.mu.Lock()
	userErr, pending := p.userErr, p.pending[k.info.ID]
	p.mu.Unlock()
	if userErr != nil {
		return userErr
	}
	if len(pending) == 0 {
		return nil
	}
	e := p.envd(k)
	var left []*stillRunning
	for _, sr := range pending {
		if gone, sandboxGone := e.stop(ctx, sr.tag, sr.pid); sandboxGone {
			p.mu.Lock()
			delete(p.pending, k.info.ID)
			p.mu.Unlock()
			return p.gone(k.info.ID, fmt.Errorf("%w: %w", ErrSandboxGone, backends.Errorf(backends.Unavailable, "e2b: the sandbox is not running")))
		} else if !gone {
			left = append(left, sr)
		}
	}
	p.mu.Lock()
	// Commands recorded meanwhile stay; those confirmed stopped go.
	p.pending[k.info.ID] = slices.DeleteFunc(p.pending[k.info.ID], func(sr *stillRunning) bool {
		return slices.Contains(pending, sr) && !slices.Contains(left, sr)
	})
	if len(p.pending[k.info.ID]) == 0 {
		delete(p.pending, k.info.ID)
	}
	p.mu.Unlock()
	if len(left) > 0 {
		return backends.NotStarted(backends.Errorf(backends.Unavailable,
			"e2b: an earlier command in sandbox %s could not be confirmed stopped and may still be running; nothing else runs there until it is: retry later: %w",
			k.info.ID, sandbox.ErrMayStillRun))
	}
	return nil
}

// Create starts a sandbox for opts.Owner (secure, with the owner in its
// metadata and an explicit timeout) and makes gitgate's directories.
func (p *Provider) Create(ctx context.Context, opts sandbox.CreateOptions) (sandbox.Info, error) {
	p.mu.Lock()
	userErr := p.userErr
	p.mu.Unlock()
	if userErr != nil {
		return sandbox.Info{}, userErr
	}
	lifetime := max(opts.TTL, p.cfg.Lifetime)
	meta := map[string]string{metaApp: "1", metaProject: opts.Owner.Project}
	if opts.Owner.Agent != "" {
		meta[metaAgent] = opts.Owner.Agent
	}
	sb, err := p.cfg.API.Create(ctx, NewSandbox{TemplateID: p.cfg.Template, Timeout: seconds(lifetime), Metadata: meta, Secure: true})
	if err != nil {
		return sandbox.Info{}, err
	}
	k := known{info: sandbox.Info{ID: sb.SandboxID, Owner: opts.Owner, Root: p.cfg.Root, Created: time.Now()},
		envdURL: p.envdURLFor(sb.SandboxID, sb.Domain), token: sb.EnvdAccessToken, madeHere: true}
	dirs := []string{"-p", "-m", "700", "--"}
	for _, sub := range []string{"home", "ws", "git", "tmp"} {
		dirs = append(dirs, p.cfg.Root+"/"+sub)
	}
	res, err := p.envd(k).Run(ctx, ExecRequest{Cmd: "/bin/mkdir", Args: dirs, Cwd: "/", Timeout: time.Minute})
	if err == nil && res.ExitCode != 0 {
		err = backends.Errorf(backends.Unavailable, "e2b: preparing the sandbox failed: %s", strings.TrimSpace(string(res.Stderr)))
	}
	if err != nil {
		_ = p.cfg.API.Kill(context.WithoutCancel(ctx), sb.SandboxID)
		return sandbox.Info{}, p.badUser(err)
	}
	if d, err := p.cfg.API.Get(ctx, sb.SandboxID); err == nil { // sizes come from the template
		k.cpus, k.memoryMB = d.CPUCount, d.MemoryMB
	}
	p.mu.Lock()
	p.known[k.info.ID] = k
	p.mu.Unlock()
	return k.info, nil
}

// Find returns owner's running sandboxes: those made for it (their
// metadata names it) and the warm ones of a pool handed to it
// (pooledFor). The two listings are sent together; either failing fails
// Find.
func (p *Provider) Find(ctx context.Context, owner sandbox.Owner) ([]sandbox.Info, error) {
	meta := map[string]string{metaApp: "1", metaProject: owner.Project}
	if owner.Agent != "" {
		meta[metaAgent] = owner.Agent
	}
	var pooled []sandbox.Info
	var pooledErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		pooled, pooledErr = p.pooledFor(ctx, owner)
	}()
	listed, err := p.cfg.API.List(ctx, meta)
	<-done
	if err != nil {
		return nil, err
	}
	if pooledErr != nil {
		return nil, pooledErr
	}
	var out []sandbox.Info
	for _, l := range listed {
		if l.Metadata[metaAgent] != owner.Agent {
			continue // a per-agent sandbox is not the project's
		}
		out = append(out, sandbox.Info{ID: l.SandboxID, Owner: owner, Root: p.cfg.Root, Created: l.StartedAt})
	}
	return append(out, pooled...), nil
}

// Lookup returns a running sandbox by id (also one another process made).
func (p *Provider) Lookup(ctx context.Context, id string) (sandbox.Info, error) {
	k, err := p.lookup(ctx, id)
	return k.info, err
}

func (p *Provider) lookup(ctx context.Context, id string) (known, error) {
	p.mu.Lock()
	k, ok := p.known[id]
	p.mu.Unlock()
	if ok {
		return k, nil
	}
	d, err := p.cfg.API.Get(ctx, id)
	if err != nil {
		return known{}, err
	}
	if d.Metadata[metaApp] != "1" {
		return known{}, backends.Errorf(backends.NotFound, "e2b: sandbox %s is not gitgate's", id)
	}
	k = known{info: sandbox.Info{ID: id, Owner: sandbox.Owner{Project: d.Metadata[metaProject], Agent: d.Metadata[metaAgent]},
		Root: p.cfg.Root, Created: d.StartedAt}, envdURL: p.envdURLFor(id, d.Domain), token: d.EnvdAccessToken, cpus: d.CPUCount, memoryMB: d.MemoryMB}
	if k.info.Owner.Project == "" { // a warm sandbox of a pool: its owner is recorded in it, if it has one yet
		k.info.Owner = p.recordedOwner(ctx, k)
	}
	p.mu.Lock()
	p.known[id] = k
	p.mu.Unlock()
	return k, nil
}

// Exec runs a program in the sandbox, with exactly req.Env as its
// environment, in a process group of its own that dies at req.Timeout (see
// Envd.Run), in one round trip to envd: the files the command needs are
// sent beside its start request (see run).
func (p *Provider) Exec(ctx context.Context, id string, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return p.run(ctx, id, req, nil)
}

// run is Exec with extra files uploaded for the command. The files a
// command needs — its standard input, the secret files it names
// (WriteSecret), extra, the owner file RecordOwner left to it — go in
// one upload sent at the same time as the command's start request, not
// before it: the command starts under a
// fixed wrapper (deliverScript) that waits for the upload's last file, a
// marker, then makes the secrets and the standard input private (uploads
// are created 0644, in the 0700 tmp directory), opens the standard input
// and unlinks it, runs the program and removes the secrets when it ends.
// So a command costs one round trip whatever it needs, and neither its
// standard input nor a secret travels in envd's logged requests.
func (p *Provider) run(ctx context.Context, id string, req sandbox.ExecRequest, extra []File) (sandbox.ExecResult, error) {
	k, err := p.lookup(ctx, id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	if err := p.ready(ctx, k); err != nil {
		return sandbox.ExecResult{}, err
	}
	e := p.envd(k)
	env := map[string]string{}
	for _, kv := range req.Env {
		if name, value, ok := strings.Cut(kv, "="); ok {
			env[name] = value
		}
	}
	if _, ok := env["GITGATE_TOKEN"]; ok {
		// The environment travels as arguments of env(1), which envd logs:
		// the git token reaches an E2B sandbox only as a file (WriteSecret).
		return sandbox.ExecResult{}, backends.Errorf(backends.Internal, "e2b: refusing to pass the git token in a command; it must be written as a file (WriteSecret)")
	}
	cmd, args := req.Path, req.Args
	secrets := p.takeSecrets(id, req)
	files := append(slices.Clone(extra), secrets...)
	in := ""
	if req.Stdin != nil {
		in = p.cfg.Root + "/tmp/stdin-" + randomName()
		files = append(files, File{Path: in, Data: req.Stdin})
	}
	var uploaded []string // what may be left in the sandbox if the call fails
	for _, f := range files {
		uploaded = append(uploaded, f.Path)
	}
	owner := p.ownerToSend(id)
	if owner != nil { // it stays: neither the wrapper nor a cleanup removes it
		files = append([]File{{Path: p.ownerPath(), Data: owner.data}}, files...)
	}
	if len(files) > 0 {
		marker := p.cfg.Root + "/tmp/.ready-" + randomName()
		files = append(files, File{Path: marker}) // written last: the others are whole
		uploaded = append(uploaded, marker)
		var names []string
		for _, sf := range secrets {
			names = append(names, sf.Path)
		}
		script := deliverScript
		if _, ok := env["PWD"]; !ok {
			script = "unset PWD; " + script // the shell exports one of its own
		}
		cmd, args = "/bin/sh", append([]string{"-c", script, "sh", marker, strings.Join(names, "\n"), in, req.Path}, req.Args...)
	}
	var mark []byte
	if !req.Around.Empty() {
		// The file operations around the program run in its shell, their
		// results after a mark on stderr (around.go); the file-size limit
		// too, as the disk measures may lower it.
		mark = []byte("gitgate-around-" + randomName() + "\n")
		if args, err = aroundArgs(req.Around, req.MaxFileBytes, string(mark), cmd, args); err != nil {
			return sandbox.ExecResult{}, err
		}
		cmd = "/bin/sh"
	} else if req.MaxFileBytes > 0 {
		cmd, args = prlimitPath, append([]string{"--fsize=" + strconv.FormatInt(req.MaxFileBytes, 10), "--", cmd}, args...)
	}
	if req.Background {
		cmd, args = "/usr/bin/nice", append([]string{"-n", "19", "--", cmd}, args...)
	}
	dir := req.Dir
	if dir == "" {
		dir = p.cfg.Root
	}
	er := ExecRequest{Cmd: cmd, Args: args, Env: env, Cwd: dir, Timeout: req.Timeout,
		MaxOutput: req.MaxOutput, SkipStdout: req.SkipStdout, OnStderr: req.OnStderr, Trailer: mark}
	var res ExecResult
	if len(files) == 0 {
		res, err = e.Run(ctx, er)
	} else {
		res, err = p.runWithFiles(ctx, e, er, files)
	}
	if err != nil {
		if len(uploaded) > 0 {
			p.cleanup(ctx, k, uploaded) // the wrapper may not have run, or not to its end
		}
		return sandbox.ExecResult{}, p.check(id, err) // an owner file sent stays queued for the next command
	}
	p.ownerSent(id, owner)
	if len(secrets) > 0 && (res.ExitCode < 0 || res.ExitCode == 137 || res.StderrTruncated || bytes.Contains(res.Stderr, []byte(secretLeft))) {
		// Killed before the wrapper could remove them, or it said it
		// could not.
		res.Stderr = bytes.ReplaceAll(res.Stderr, []byte(secretLeft+"\n"), nil)
		p.cleanup(ctx, k, uploaded)
	}
	out := sandbox.ExecResult{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode,
		StdoutTruncated: res.StdoutTruncated, StderrTruncated: res.StderrTruncated, StdoutTotalBytes: res.StdoutTotalBytes}
	if mark != nil {
		var prepared bool
		out.Around, prepared = parseAround(req.Around, res.Trailer)
		if !prepared && res.Trailer != nil {
			return sandbox.ExecResult{}, aroundFailed(res)
		}
	}
	return out, nil
}

// runWithFiles starts the command and uploads its files at the same time;
// when the upload fails, the command (waiting for it) is stopped and the
// upload's error returned.
func (p *Provider) runWithFiles(ctx context.Context, e *Envd, er ExecRequest, files []File) (ExecResult, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res ExecResult
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, runErr = e.Run(runCtx, er)
	}()
	upErr := e.UploadFiles(ctx, files)
	if upErr != nil {
		cancel()
	}
	<-done
	if upErr != nil {
		var sr *stillRunning
		if errors.As(runErr, &sr) {
			return ExecResult{}, fmt.Errorf("%w (and %w)", upErr, runErr)
		}
		return ExecResult{}, upErr
	}
	return res, runErr
}

// deliverScript: $1 the marker, the upload's last file; $2 the secret
// files, one a line; $3 the standard input file or ""; then the program
// and its arguments. Only absolute paths: the environment is the
// program's. The secrets are removed whenever the shell exits (also at
// SIGTERM, which the command's deadline sends to its group); when that
// fails it says so on stderr (secretLeft), and gitgate removes them.
const deliverScript = `set -f; m=$1 s=$2 i=$3; shift 3
unsecret() { IFS='
'; for f in $s; do /bin/rm -f -- "$f" || echo "` + secretLeft + `" >&2; done; }
trap unsecret EXIT
trap 'exit 143' TERM INT HUP
IFS='
'
n=0
while [ ! -e "$m" ]; do
n=$((n+1)); [ $n -le 12000 ] || { echo "gitgate: the files sent with the command did not arrive" >&2; exit 125; }
/bin/sleep 0.005
done
/bin/rm -f -- "$m"
for f in $s; do /bin/chmod 600 -- "$f" || exit 126; done
unset IFS
if [ -n "$i" ]; then /bin/chmod 600 -- "$i" || exit 126; exec <"$i"; /bin/rm -f -- "$i"; fi
[ -n "$s" ] || exec "$@"
"$@"`

// secretLeft is what deliverScript says when it could not remove a secret.
const secretLeft = "gitgate: a secret file could not be removed"

// takeSecrets returns the secrets written for sandbox id that req names
// (in an argument or an environment value), and marks them delivered.
func (p *Provider) takeSecrets(id string, req sandbox.ExecRequest) []File {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []File
	for file, data := range p.secrets[id] {
		if data == nil || !names(req, file) {
			continue
		}
		out = append(out, File{Path: file, Data: data})
		p.secrets[id][file] = nil
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// names reports whether req mentions file.
func names(req sandbox.ExecRequest, file string) bool {
	for _, a := range append(slices.Clone(req.Args), req.Env...) {
		if strings.Contains(a, file) {
			return true
		}
	}
	return false
}

// cleanup removes files gitgate left in sandbox k (uploads of a call that
// failed, a secret its wrapper could not remove) after the call returns,
// off the caller's time: tried three times, a failure logged as an error
// (also for a secret: the paths logged are random names, never contents).
// A sandbox that is gone took its files with it. Wait waits for the
// cleanups running.
func (p *Provider) cleanup(ctx context.Context, k known, files []string) {
	p.cleanups.Add(1)
	go func() {
		defer p.cleanups.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		var err error
		for attempt := range 3 {
			if attempt > 0 {
				select {
				case <-time.After(time.Duration(attempt) * time.Second):
				case <-ctx.Done():
				}
			}
			var res ExecResult
			res, err = p.envd(k).Run(ctx, ExecRequest{Cmd: "/bin/rm", Args: append([]string{"-f", "--"}, files...), Cwd: "/", Timeout: 30 * time.Second})
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("rm: %s", strings.TrimSpace(string(res.Stderr)))
			}
			if err == nil || errors.Is(err, ErrSandboxGone) || ctx.Err() != nil {
				break
			}
		}
		if err != nil && !errors.Is(err, ErrSandboxGone) {
			base := make([]string, len(files))
			for i, f := range files {
				base[i] = path.Base(f)
			}
			p.cfg.Logger.Error("e2b: removing files from the sandbox failed; they remain until it ends", "sandbox", k.info.ID, "files", base, "err", err)
		}
	}()
}

// Wait waits for the removals still running after their calls returned
// (see cleanup), or for ctx to end.
func (p *Provider) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.cleanups.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gone forgets a sandbox whose envd says it is gone, so that the next
// Lookup asks the API (which then reports it not found).
func (p *Provider) gone(id string, err error) error {
	if errors.Is(err, ErrSandboxGone) {
		p.mu.Lock()
		delete(p.known, id)
		delete(p.unsentOwner, id)
		p.mu.Unlock()
	}
	return err
}

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WriteSecret writes data to file (under the 0700 tmp directory) for the
// next command that names file: it travels with that command, in the
// upload beside its start request (see run), whose body is not in envd's
// request log, unlike arguments, environment variables and standard
// input. The file exists in the sandbox only while that command runs: it
// is made 0600 before the program starts (envd creates uploads 0644) and
// removed when it ends. RemoveAll of file then does nothing more (and
// forgets a secret no command named).
func (p *Provider) WriteSecret(ctx context.Context, id, file string, data []byte) error {
	k, err := p.lookup(ctx, id)
	if err != nil {
		return err
	}
	if err := p.ready(ctx, k); err != nil {
		return err
	}
	if !strings.HasPrefix(path.Clean(file), p.cfg.Root+"/tmp/") {
		return backends.Errorf(backends.Internal, "e2b: a secret file must be under %s/tmp", p.cfg.Root)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.secrets[id] == nil {
		p.secrets[id] = map[string][]byte{}
	}
	p.secrets[id][path.Clean(file)] = slices.Clone(data)
	return nil
}

var _ sandbox.SecretWriter = (*Provider)(nil)

// SetTTL sets the sandbox's remaining lifetime (E2B kills it when it
// runs out).
func (p *Provider) SetTTL(ctx context.Context, id string, ttl time.Duration) error {
	return p.cfg.API.SetTimeout(ctx, id, max(ttl, time.Minute))
}

// Destroy kills the sandbox and counts its lifetime and cost.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	p.mu.Lock()
	k, ok := p.known[id]
	delete(p.known, id)
	delete(p.pending, id) // its commands end with it
	delete(p.secrets, id) // and its files
	delete(p.unsentOwner, id)
	p.mu.Unlock()
	if err := p.cfg.API.Kill(ctx, id); err != nil {
		return err
	}
	if ok && !k.info.Created.IsZero() {
		life := time.Since(k.info.Created).Seconds()
		p.lifetime.Add(life)
		p.cost.Add(life * p.perSecond(k))
	}
	return nil
}

// File operations run as one fixed shell script each, inside the
// sandbox, with the paths as positional parameters (never interpolated).
// Each resolves symbolic links with realpath and refuses a target outside
// the root it was given, as the local provider's os.Root does; exit codes
// carry the outcome.
const (
	exitNotFound = 3
	exitEscapes  = 4
	exitNotFile  = 5
	exitNotEmpty = 6
	exitIsDir    = 7
)

// confine is shared by the scripts: $1 the root, $2 the path below it;
// sets r (the resolved root) and t (the resolved target, which may not
// exist when mode is -m).
const confine = `r=$(realpath -e -- "$1") || exit 3
t=$(realpath $MODE -- "$1/$2") || exit 3
case "$t" in "$r"|"$r"/*) ;; *) exit 4 ;; esac
`

var readScript = `MODE=-e
` + confine + `[ -f "$t" ] || exit 5
stat -c %s -- "$t"
tail -c +$(($3 + 1)) -- "$t" | head -c "$4"
`

func (p *Provider) script(ctx context.Context, id, script string, maxOut int, args ...string) (sandbox.ExecResult, error) {
	return p.Exec(ctx, id, scriptRequest(script, maxOut, args...))
}

func scriptRequest(script string, maxOut int, args ...string) sandbox.ExecRequest {
	return sandbox.ExecRequest{Path: "/bin/sh", Args: append([]string{"-c", script, "sh"}, args...),
		Env: []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}, Timeout: time.Minute, MaxOutput: maxOut}
}

func fileOpError(res sandbox.ExecResult, rel string) error {
	switch res.ExitCode {
	case exitNotFound:
		return backends.Errorf(backends.NotFound, "%s: no such file or directory", rel)
	case exitEscapes:
		return backends.Errorf(backends.Forbidden, "%s: path leaves the work tree (through '..' or a symbolic link)", rel)
	case exitNotFile:
		return backends.Errorf(backends.InvalidArgument, "%s: not a regular file", rel)
	case exitNotEmpty:
		return backends.Errorf(backends.Conflict, "%s: directory is not empty", rel)
	case exitIsDir:
		return backends.Errorf(backends.InvalidArgument, "%s: is a directory", rel)
	}
	return backends.Errorf(backends.Internal, "%s: file operation failed: %s", rel, strings.TrimSpace(string(res.Stderr)))
}

// ReadFile reads up to limit bytes at offset of root/rel.
func (p *Provider) ReadFile(ctx context.Context, id, root, rel string, offset, limit int64) (sandbox.FileData, error) {
	res, err := p.script(ctx, id, readScript, int(limit)+32, root, rel, strconv.FormatInt(offset, 10), strconv.FormatInt(limit, 10))
	if err != nil {
		return sandbox.FileData{}, err
	}
	if res.ExitCode != 0 {
		return sandbox.FileData{}, fileOpError(res, rel)
	}
	sizeLine, data, ok := strings.Cut(string(res.Stdout), "\n")
	size, perr := strconv.ParseInt(sizeLine, 10, 64)
	if !ok || perr != nil {
		return sandbox.FileData{}, backends.Errorf(backends.Internal, "%s: unexpected output reading the file", rel)
	}
	return sandbox.FileData{Data: []byte(data), Size: size}, nil
}

// writeScript: $3 the uploaded temporary file, removed on every way out.
// The parent directories are created after the confinement check; the
// file is renamed into place, so readers never see a partial file and a
// symbolic link at the target is replaced, not followed; a regular file
// keeps its mode.
var writeScript = `trap 'rm -f -- "$3"' EXIT
MODE=-m
d=$(dirname -- "$2")
` + strings.Replace(confine, `"$1/$2"`, `"$1/$d"`, 1) + `t="$t/$(basename -- "$2")"
[ -d "$t" ] && [ ! -L "$t" ] && { rm -f -- "$3"; exit 7; }
created=1
if [ -e "$t" ] || [ -L "$t" ]; then created=0; fi
if [ -f "$t" ] && [ ! -L "$t" ]; then chmod --reference="$t" -- "$3"; else chmod 644 -- "$3"; fi
mkdir -p -- "$(dirname -- "$t")" && mv -f -T -- "$3" "$t" || { rm -f -- "$3"; exit 1; }
echo $created
`

// WriteFile atomically replaces (or creates) root/rel: the data is
// uploaded beside the start of the script that moves it into place, in one
// round trip (see run).
func (p *Provider) WriteFile(ctx context.Context, id, root, rel string, data []byte) (bool, error) {
	tmp := p.cfg.Root + "/tmp/upload-" + randomName()
	res, err := p.run(ctx, id, scriptRequest(writeScript, 64, root, rel, tmp), []File{{Path: tmp, Data: data}})
	if err != nil {
		return false, err
	}
	if res.ExitCode != 0 {
		return false, fileOpError(res, rel)
	}
	return strings.TrimSpace(string(res.Stdout)) == "1", nil
}

// listScript: $3 "1" for recursive. Entries are "type size path" records
// separated by NUL; symbolic links are listed, not followed.
var listScript = `MODE=-e
` + confine + `[ -d "$t" ] || exit 5
cd -- "$t" || exit 1
if [ "$3" = 1 ]; then find . -mindepth 1 -printf '%y %s %P\0'; else find . -mindepth 1 -maxdepth 1 -printf '%y %s %P\0'; fi
`

// ListDir lists root/rel, recursively if asked, up to max entries, in the
// order of a depth-first walk with each directory's entries sorted.
func (p *Provider) ListDir(ctx context.Context, id, root, rel string, recursive bool, maxEntries int) ([]sandbox.Entry, error) {
	rec := "0"
	if recursive {
		rec = "1"
	}
	res, err := p.script(ctx, id, listScript, 64<<20, root, rel, rec)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		if res.ExitCode == exitNotFile {
			return nil, backends.Errorf(backends.InvalidArgument, "%s: not a directory", rel)
		}
		return nil, fileOpError(res, rel)
	}
	var out []sandbox.Entry
	for rec := range strings.SplitSeq(string(res.Stdout), "\x00") {
		kind, rest, ok := strings.Cut(rec, " ")
		size, name, ok2 := strings.Cut(rest, " ")
		if !ok || !ok2 {
			continue
		}
		e := sandbox.Entry{Path: path.Join(rel, name), Type: "file"}
		switch kind {
		case "d":
			e.Type = "dir"
		case "l":
			e.Type = "symlink"
		default:
			e.Size, _ = strconv.ParseInt(size, 10, 64)
		}
		if rel == "." || rel == "" {
			e.Path = name
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b sandbox.Entry) int {
		return slices.Compare(strings.Split(a.Path, "/"), strings.Split(b.Path, "/"))
	})
	if len(out) > maxEntries {
		out = out[:maxEntries]
	}
	return out, nil
}

// removeScript deletes a file, a symbolic link or an empty directory and
// prints whether there was anything.
var removeScript = `MODE=-e
d=$(dirname -- "$2")
` + strings.Replace(confine, `"$1/$2"`, `"$1/$d"`, 1) + `t="$t/$(basename -- "$2")"
if [ ! -e "$t" ] && [ ! -L "$t" ]; then echo 0; exit 0; fi
if [ -d "$t" ] && [ ! -L "$t" ]; then rmdir -- "$t" 2>/dev/null || exit 6; else rm -f -- "$t" || exit 1; fi
echo 1
`

// Remove deletes root/rel (a file, a symbolic link or an empty directory).
func (p *Provider) Remove(ctx context.Context, id, root, rel string) (bool, error) {
	res, err := p.script(ctx, id, removeScript, 64, root, rel)
	if err != nil {
		return false, err
	}
	if res.ExitCode == exitNotFound {
		return false, nil // the parent does not exist either
	}
	if res.ExitCode != 0 {
		return false, fileOpError(res, rel)
	}
	return strings.TrimSpace(string(res.Stdout)) == "1", nil
}

// RemoveAll deletes the tree at target, which must lie strictly below the
// sandbox's root (rm does not follow symbolic links).
func (p *Provider) RemoveAll(ctx context.Context, id, target string) error {
	clean := path.Clean(target)
	if !strings.HasPrefix(clean, p.cfg.Root+"/") {
		return backends.Errorf(backends.Internal, "path %s is outside sandbox %s", target, id)
	}
	p.mu.Lock()
	_, secret := p.secrets[id][clean]
	delete(p.secrets[id], clean)
	if len(p.secrets[id]) == 0 {
		delete(p.secrets, id)
	}
	p.mu.Unlock()
	if secret {
		// Never sent, or removed by its command's wrapper (else being
		// removed by cleanup): nothing of it is in the sandbox.
		return nil
	}
	res, err := p.Exec(ctx, id, sandbox.ExecRequest{Path: "/bin/rm", Args: []string{"-rf", "--", clean}, Timeout: time.Minute})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return backends.Errorf(backends.Internal, "remove: %s", strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// String describes the provider for logs.
func (p *Provider) String() string {
	return fmt.Sprintf("e2b(template %s, root %s)", p.cfg.Template, p.cfg.Root)
}
