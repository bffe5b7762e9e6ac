package deploycheck

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// repoRoot is gitgate's repository, three levels up from this module.
var repoRoot = func() string {
	dir, err := filepath.Abs("../../..")
	if err != nil {
		panic(err)
	}
	return dir
}()

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// gitgateBinary returns the gitgate binary the checks ask: $DEPLOYCHECK_GITGATE
// (make deploy-check passes bin/gitgate), else one built from the
// repository once for the whole test binary.
func gitgateBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DEPLOYCHECK_GITGATE"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploycheck-bin-") //nolint:usetesting // shared by every test, removed by TestMain
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gitgate")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/gitgate")
		cmd.Dir = repoRoot
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/gitgate: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestDeployTree is make deploy-check's verdict on the committed files.
func TestDeployTree(t *testing.T) {
	report, err := Check(repoRoot, gitgateBinary(t))
	for _, line := range report {
		t.Log(line)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRulesFileIsGenerated: the committed PrometheusRule is the
// generator's output, and carries every group of the rule files.
func TestRulesFileIsGenerated(t *testing.T) {
	b, err := Build(filepath.Join(repoRoot, "deploy", "kubernetes", "overlays", "production"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRules(repoRoot, b.Rules()); err != nil {
		t.Fatal(err)
	}
	groups := 0
	for _, r := range b.Rules() {
		groups += len(r.Spec.Groups)
	}
	if len(b.Rules()) != len(RuleSources) || groups < len(RuleSources) {
		t.Fatalf("%d PrometheusRules with %d groups, want %d resources", len(b.Rules()), groups, len(RuleSources))
	}
}

// TestBrokenCopiesFail breaks a copy of deploy/ in one place at a time and
// expects the check to fail naming what is wrong: every kind of check can
// fail.
func TestBrokenCopiesFail(t *testing.T) {
	gitgate := gitgateBinary(t)
	cases := []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "kubernetes/base/gateway.yaml", "  revisionHistoryLimit: 5", "  revisionHistoryLimits: 5",
			`unknown field "spec.revisionHistoryLimits"`},
		{"wrong type", "kubernetes/base/backend.yaml", "  replicas: 2", "  replicas: two",
			"Deployment gitgate-backend: strict decoding"},
		{"unknown kind", "kubernetes/base/servicemonitor.yaml", "kind: ServiceMonitor", "kind: ServiceMonitr",
			"ServiceMonitr"},
		{"probe port", "kubernetes/base/gateway.yaml", "              path: /readyz\n              port: admin", "              path: /readyz\n              port: admn",
			"readinessProbe: port admn is not a port of container gateway"},
		{"grpc probe port", "kubernetes/base/backend.yaml", "              port: 7430\n              service: gitgate", "              port: 7439\n              service: gitgate",
			"readinessProbe: port 7439 is not a port of container backend"},
		{"service target port", "kubernetes/base/gateway.yaml", "      targetPort: mcp", "      targetPort: mpc",
			"Service gitgate: port mcp: port mpc is not a container port"},
		{"hpa target", "kubernetes/base/gateway.yaml", "    kind: Deployment\n    name: gitgate-gateway", "    kind: Deployment\n    name: gitgate-gateways",
			"scaleTargetRef Deployment gitgate-gateways is not in the build"},
		{"network policy port", "kubernetes/base/networkpolicy.yaml", "        - port: flagsync", "        - port: flags",
			"NetworkPolicy gitgate-flags: ingress: port flags"},
		{"config key", "kubernetes/base/gitgate.yaml", "  insecure: true", "  insecur: true",
			"unknown configuration key approach2.insecur"},
		{"env variable", "kubernetes/base/gateway.yaml", "- name: GITGATE_LISTEN_ADMIN_TOKEN_SHA256", "- name: GITGATE_LISTEN_ADMIN_TOKEN_SHA",
			"unknown configuration variable GITGATE_LISTEN_ADMIN_TOKEN_SHA"},
		{"subcommand", "kubernetes/base/branches-cleanup-cronjob.yaml", "args: [branches, cleanup,", "args: [branches, clean-up,",
			"gitgate branches clean-up"},
		{"flag", "kubernetes/base/flags.yaml", "            - --listen", "            - --listen-addr",
			"unknown flag: --listen-addr"},
		{"grace period", "kubernetes/base/gateway.yaml", "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 20",
			"terminationGracePeriodSeconds (20s) must exceed listen.drain_delay + listen.drain_timeout (25s)"},
		{"secret not mounted", "kubernetes/base/gateway.yaml", "items: [{key: dsn, path: gitgate-ledger/dsn}]", "items: [{key: dsn, path: gitgate-ledger/url}]",
			"canary.ledger_dsn_file: /run/secrets/gitgate/gitgate-ledger/dsn is not a key of a Secret"},
		{"rules drift", "prometheus/gitgate.alerts.yml", "groups:\n", "groups:\n  - name: drifted\n    rules: []\n",
			"differs from deploy/prometheus's rule files"},
		{"unit directive", "systemd/gitgate-backend.service", "Restart=on-failure", "Restart=sometimes",
			"Failed to parse service restart specifier"},
		{"unit unknown key", "systemd/gitgate-flags.service", "RestartSec=2s", "RestartSecs=2s",
			"Unknown key 'RestartSecs'"},
		{"unit subcommand", "systemd/gitgate-flags.service", "bin/gitgate flags serve", "bin/gitgate flags serv",
			"gitgate flags serv"},
		{"unit variable", "systemd/gitgate-backend.service", "Environment=GITGATE_STATE_DIR=", "Environment=GITGATE_STATE_DIRS=",
			"unknown configuration variable GITGATE_STATE_DIRS"},
		{"timer without service", "systemd/gitgate-report.timer", "[Timer]", "[Timer]\nUnit=gitgate-reports.service",
			"gitgate-report.timer: starts gitgate-reports.service, which is not in deploy/systemd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			copyDir(t, filepath.Join(repoRoot, "deploy"), filepath.Join(root, "deploy"))
			path := filepath.Join(root, "deploy", tc.file)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(text), tc.old) {
				t.Fatalf("%s has no %q to break", tc.file, tc.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(text), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Check(root, gitgate)
			if err == nil {
				t.Fatalf("the check passed with %s broken (%q → %q)", tc.file, tc.old, tc.new)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("the error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
