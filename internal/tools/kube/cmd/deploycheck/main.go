// Command deploycheck checks gitgate's deployment files (make deploy-check):
// the kustomize overlays of deploy/kubernetes, built with kustomize's Go API
// and decoded strictly against the Kubernetes and Prometheus operator API
// types, their references to gitgate's subcommands, flags and
// configuration keys (asked of the gitgate binary), the PrometheusRule
// against deploy/prometheus, and deploy/systemd with systemd-analyze
// verify. With -write-rules it writes the PrometheusRule instead.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	deploycheck "github.com/gitgate/gitgate/internal/tools/kube"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	gitgate := flag.String("gitgate", "bin/gitgate", "the gitgate binary whose subcommands, flags and keys the files must use")
	writeRules := flag.Bool("write-rules", false, "write "+deploycheck.RulesFile+" from deploy/prometheus and exit")
	flag.Parse()
	if err := run(*root, *gitgate, *writeRules); err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		os.Exit(1)
	}
}

func run(root, gitgate string, writeRules bool) error {
	if writeRules {
		b, err := deploycheck.GenerateRules(root)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, deploycheck.RulesFile), b, 0o644)
	}
	bin, err := filepath.Abs(gitgate)
	if err != nil {
		return err
	}
	report, err := deploycheck.Check(root, bin)
	for _, line := range report {
		fmt.Println(line)
	}
	return err
}
