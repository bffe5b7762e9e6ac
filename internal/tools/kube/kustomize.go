// Package deploycheck checks gitgate's deployment files: the kustomize
// overlays of deploy/kubernetes (built with kustomize's Go API, every
// resource decoded strictly against Kubernetes' and the Prometheus
// operator's API types, cross-checked, and checked against the gitgate
// binary's subcommands, flags and configuration keys), the PrometheusRule
// against deploy/prometheus, and the systemd units of deploy/systemd
// (systemd-analyze verify). It is its own module, so that kustomize and
// the Kubernetes API stay out of gitgate's go.mod; `make deploy-check`
// runs cmd/deploycheck.
package deploycheck

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Check runs every check on the repository at root with the gitgate
// binary at gitgate, and returns one line per thing checked; the error
// joins every failure.
func Check(root, gitgate string) ([]string, error) {
	var report []string
	var errs []error
	overlays, err := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "overlays", "*", "kustomization.yaml"))
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	if len(overlays) == 0 {
		return nil, errors.New("kubernetes: no overlay in deploy/kubernetes/overlays")
	}
	slices.Sort(overlays)
	for _, k := range overlays {
		dir := filepath.Dir(k)
		name, _ := filepath.Rel(root, dir)
		b, err := Build(dir)
		if err == nil {
			err = errors.Join(b.CrossCheck(), b.CheckGitgate(gitgate), CheckRules(root, b.Rules()))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		report = append(report, fmt.Sprintf("ok  %s: %d resources", name, len(b.Objects)))
	}
	units, err := CheckSystemd(filepath.Join(root, "deploy", "systemd"), gitgate)
	if err != nil {
		errs = append(errs, fmt.Errorf("deploy/systemd: %w", err))
	} else {
		report = append(report, fmt.Sprintf("ok  deploy/systemd: %d units", units))
	}
	return report, errors.Join(errs...)
}

// Object is one resource of a build: its kind, name and typed value.
type Object struct {
	Kind, Name string
	Value      runtime.Object
}

// BuildResult is a kustomize overlay built and decoded.
type BuildResult struct {
	Objects []Object
}

// scheme knows the built-in Kubernetes types (client-go's scheme) and the
// Prometheus operator's monitoring.coreos.com/v1.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// strict decodes YAML into the scheme's types, refusing unknown and
// duplicate fields and kinds the scheme does not know.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// Build runs kustomize (its Go API, as `kustomize build dir` would) on the
// kustomization in dir and decodes every resource strictly.
func Build(dir string) (*BuildResult, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	b := &BuildResult{}
	var errs []error
	for _, r := range m.Resources() {
		text, err := r.AsYAML()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err))
			continue
		}
		obj, err := DecodeStrict(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err))
			continue
		}
		b.Objects = append(b.Objects, Object{Kind: r.GetKind(), Name: r.GetName(), Value: obj})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeStrict decodes one manifest into its API type, failing on a kind
// the scheme does not know and on an unknown or duplicate field.
func DecodeStrict(text []byte) (runtime.Object, error) {
	obj, _, err := strict.Decode(text, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("strict decoding: %w", err)
	}
	return obj, nil
}

// Rules returns the build's PrometheusRule resources.
func (b *BuildResult) Rules() []*monitoringv1.PrometheusRule {
	var out []*monitoringv1.PrometheusRule
	for _, o := range b.Objects {
		if r, ok := o.Value.(*monitoringv1.PrometheusRule); ok {
			out = append(out, r)
		}
	}
	return out
}
