package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Image is the gitgate image: containers running it are checked against
// the gitgate binary.
const Image = "ghcr.io/gitgate/gitgate"

// loadsSecrets are the subcommands that resolve every secret of the
// configuration at start (configs.Load): their containers must have every
// *_file the configuration names. The others read the configuration
// without its secrets (configs.Read).
var loadsSecrets = []string{"serve", "backend", "branches"}

// drains maps the subcommands that drain on SIGTERM to the keys of their
// drain delay and timeout, with gitgate's defaults.
var drains = map[string][2]durationKey{
	"serve":   {{"listen.drain_delay", 5 * time.Second}, {"listen.drain_timeout", 15 * time.Second}},
	"backend": {{"approach2.drain_delay", 5 * time.Second}, {"approach2.drain_timeout", 15 * time.Second}},
}

type durationKey struct {
	key string
	def time.Duration
}

// CheckGitgate checks every container running the gitgate image against
// the binary at gitgate: its arguments name a subcommand and flags that
// exist; the configuration file it is given (--config, found through the
// container's mounts in the build's ConfigMaps) and its GITGATE_*
// variables hold only keys gitgate knows (gitgate's own loader reads them);
// a command that loads secrets has each *_file the configuration names
// from a mounted Secret; a draining command's grace period covers its
// drain delay and timeout.
func (b *BuildResult) CheckGitgate(gitgate string) error {
	var errs []error
	for _, w := range b.workloads() {
		for _, c := range w.template.Spec.Containers {
			if !strings.HasPrefix(c.Image, Image+":") && !strings.HasPrefix(c.Image, Image+"@") && c.Image != Image {
				continue
			}
			if err := b.checkGitgateContainer(gitgate, w, c); err != nil {
				errs = append(errs, fmt.Errorf("%s: container %s: %w", w.ref, c.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (b *BuildResult) checkGitgateContainer(gitgate string, w workload, c corev1.Container) error {
	args := slices.Concat(c.Command, c.Args)
	if len(args) == 0 {
		return errors.New("no arguments: name a gitgate subcommand")
	}
	errs := []error{CheckArgs(gitgate, args)}
	configPath := flagValue(args, "--config")
	var config []byte
	if configPath != "" {
		var err error
		if config, err = b.mountedConfigMapFile(w, c, configPath); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "GITGATE_") {
			continue
		}
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "from-" + e.Name // a value the loader accepts for a string key
		}
	}
	errs = append(errs, CheckConfig(gitgate, configPath, config, env))
	settings := map[string]any{}
	if err := yaml.Unmarshal(config, &settings); err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: %w", configPath, err))...)
	}
	if slices.Contains(loadsSecrets, args[0]) {
		errs = append(errs, secretFilesMounted(w, c, settings))
	}
	if keys, ok := drains[args[0]]; ok {
		errs = append(errs, checkGrace(w, settings, keys))
	}
	return errors.Join(errs...)
}

// CheckArgs asks the gitgate binary whether args (a subcommand and its
// flags) parse: `gitgate <args> --help` fails on an unknown subcommand or
// flag and does nothing else.
func CheckArgs(gitgate string, args []string) error {
	if out, err := runGitgate(gitgate, nil, append(slices.Clone(args), "--help")...); err != nil {
		return fmt.Errorf("gitgate %s: %w: %s", strings.Join(args, " "), err, firstLine(out))
	}
	return nil
}

// CheckConfig has gitgate's own loader read config (a gitgate.yaml, named
// name in errors; nil for the embedded defaults) with the variables env and nothing else in
// the environment: it refuses an unknown key or GITGATE_* variable by
// name. `gitgate drill history` is the command used: it reads the
// configuration (configs.Read) and lists a directory, changing nothing.
func CheckConfig(gitgate, name string, config []byte, env map[string]string) error {
	key := []string{gitgate, name, string(config)}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		key = append(key, k+"="+env[k])
	}
	k := strings.Join(key, "\x00")
	if err, ok := configChecks.Load(k); ok {
		return err.(checked).err
	}
	err := checkConfig(gitgate, name, config, env)
	configChecks.Store(k, checked{err})
	return err
}

// configChecks remembers CheckConfig's answers (the overlays share their
// configuration).
var configChecks sync.Map

type checked struct{ err error }

func checkConfig(gitgate, name string, config []byte, env map[string]string) error {
	dir, err := os.MkdirTemp("", "deploycheck-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	args := []string{"drill", "history", "--json"}
	path := filepath.Join(dir, "gitgate.yaml")
	if config != nil {
		if err := os.WriteFile(path, config, 0o600); err != nil {
			return err
		}
		args = append(args, "--config", path)
	}
	environ := []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "GITGATE_DRILL_HISTORY_DIR=" + filepath.Join(dir, "drills")}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	if out, err := runGitgate(gitgate, environ, args...); err != nil {
		return fmt.Errorf("configuration: %s", strings.ReplaceAll(firstLine(out), path, name))
	}
	return nil
}

// runs remembers runGitgate's answers: the overlays run the same
// containers, and the binary answers the same question the same way.
var runs sync.Map // runKey → runResult

type runResult struct {
	out []byte
	err error
}

// runGitgate runs the binary with args and environ (nil: this process's)
// and returns its combined output.
func runGitgate(gitgate string, environ []string, args ...string) ([]byte, error) {
	key := strings.Join(slices.Concat([]string{gitgate}, environ, []string{"--"}, args), "\x00")
	if r, ok := runs.Load(key); ok {
		return r.(runResult).out, r.(runResult).err
	}
	out, err := execGitgate(gitgate, environ, args...)
	runs.Store(key, runResult{out, err})
	return out, err
}

func execGitgate(gitgate string, environ []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitgate, args...)
	cmd.Env = environ
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// flagValue returns the value of --name in args (--name v or --name=v).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// mountFor returns c's mount holding path (the longest mount path that
// contains it) and path relative to it.
func mountFor(c corev1.Container, path string) (corev1.VolumeMount, string, bool) {
	var best corev1.VolumeMount
	rel, found := "", false
	for _, m := range c.VolumeMounts {
		r, err := filepath.Rel(m.MountPath, path)
		if err != nil || r == "." || strings.HasPrefix(r, "..") {
			continue
		}
		if !found || len(m.MountPath) > len(best.MountPath) {
			best, rel, found = m, r, true
		}
	}
	return best, rel, found
}

func volume(w workload, name string) *corev1.Volume {
	for i, v := range w.template.Spec.Volumes {
		if v.Name == name {
			return &w.template.Spec.Volumes[i]
		}
	}
	return nil
}

// mountedConfigMapFile returns the content of path in c: a key of the
// ConfigMap mounted there.
func (b *BuildResult) mountedConfigMapFile(w workload, c corev1.Container, path string) ([]byte, error) {
	m, rel, ok := mountFor(c, path)
	if !ok {
		return nil, fmt.Errorf("--config %s: no volume is mounted there", path)
	}
	v := volume(w, m.Name)
	if v == nil || v.ConfigMap == nil {
		return nil, fmt.Errorf("--config %s: volume %s is not a ConfigMap", path, m.Name)
	}
	for _, o := range b.Objects {
		if cm, ok := o.Value.(*corev1.ConfigMap); ok && cm.Name == v.ConfigMap.Name {
			if data, ok := cm.Data[rel]; ok {
				return []byte(data), nil
			}
			return nil, fmt.Errorf("--config %s: ConfigMap %s has no key %s", path, cm.Name, rel)
		}
	}
	return nil, fmt.Errorf("--config %s: ConfigMap %s is not in the build", path, v.ConfigMap.Name)
}

// secretFilesMounted checks that every *_file key of settings with a
// value is a file of a Secret mounted in c.
func secretFilesMounted(w workload, c corev1.Container, settings map[string]any) error {
	var errs []error
	walkFiles("", settings, func(key, path string) {
		m, rel, ok := mountFor(c, path)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s: no volume is mounted there", key, path))
			return
		}
		v := volume(w, m.Name)
		if v == nil || !secretHas(v, rel) {
			errs = append(errs, fmt.Errorf("%s: %s is not a key of a Secret mounted at %s", key, path, m.MountPath))
		}
	})
	return errors.Join(errs...)
}

// secretFileSuffixes end the keys of secrets read from files (the *_file
// siblings of the *_env keys: token_file, read_token_file, api_key_file,
// dsn_file, ledger_dsn_file, password_file ...); other *_file keys, such
// as drill.flag_file, are not secrets.
var secretFileSuffixes = []string{"token_file", "key_file", "dsn_file", "password_file"}

// walkFiles calls fn with every secret *_file key whose value is a
// non-empty string, at any depth.
func walkFiles(prefix string, m map[string]any, fn func(key, value string)) {
	for k, v := range m {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		switch v := v.(type) {
		case map[string]any:
			walkFiles(key, v, fn)
		case string:
			if v != "" && slices.ContainsFunc(secretFileSuffixes, func(s string) bool { return strings.HasSuffix(k, s) }) {
				fn(key, v)
			}
		}
	}
}

// secretHas reports whether volume v (a Secret or a projection of
// Secrets) has a file at rel.
func secretHas(v *corev1.Volume, rel string) bool {
	has := func(items []corev1.KeyToPath) bool {
		if len(items) == 0 {
			return !strings.Contains(rel, "/") // every key, by its name: cannot be checked further
		}
		return slices.ContainsFunc(items, func(i corev1.KeyToPath) bool { return i.Path == rel })
	}
	switch {
	case v.Secret != nil:
		return has(v.Secret.Items)
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			if s.Secret != nil && (len(s.Secret.Items) > 0 || !strings.Contains(rel, "/")) && has(s.Secret.Items) {
				return true
			}
		}
	}
	return false
}

// checkGrace checks that the pod's terminationGracePeriodSeconds is longer
// than the drain delay and timeout together.
func checkGrace(w workload, settings map[string]any, keys [2]durationKey) error {
	var total time.Duration
	for _, k := range keys {
		d, err := durationAt(settings, k)
		if err != nil {
			return err
		}
		total += d
	}
	grace := 30 * time.Second // Kubernetes' default
	if g := w.template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= total {
		return fmt.Errorf("terminationGracePeriodSeconds (%s) must exceed %s + %s (%s): the pod would be killed while draining",
			grace, keys[0].key, keys[1].key, total)
	}
	return nil
}

func durationAt(settings map[string]any, k durationKey) (time.Duration, error) {
	var v any = settings
	for _, part := range strings.Split(k.key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return k.def, nil
		}
		if v, ok = m[part]; !ok {
			return k.def, nil
		}
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%s: %v is not a duration", k.key, v)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k.key, err)
	}
	return d, nil
}
