package deploycheck

import (
	"errors"
	"fmt"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is a pod template of the build: a Deployment's or a CronJob's.
type workload struct {
	ref      string // "Deployment gitgate-gateway"
	template *corev1.PodTemplateSpec
}

func (b *BuildResult) workloads() []workload {
	var out []workload
	for _, o := range b.Objects {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{"Deployment " + v.Name, &v.Spec.Template})
		case *batchv1.CronJob:
			out = append(out, workload{"CronJob " + v.Name, &v.Spec.JobTemplate.Spec.Template})
		}
	}
	return out
}

// selecting returns the workloads whose pods sel selects.
func (b *BuildResult) selecting(sel labels.Selector) []workload {
	var out []workload
	for _, w := range b.workloads() {
		if !sel.Empty() && sel.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func (b *BuildResult) has(kind, name string) bool {
	return slices.ContainsFunc(b.Objects, func(o Object) bool { return o.Kind == kind && o.Name == name })
}

// CrossCheck checks what strict decoding cannot: that the resources refer
// to each other correctly. Selectors select pods; Services', probes' and
// NetworkPolicies' ports name container ports; PDBs, the HPA and
// ServiceMonitors find their targets; volumes name ConfigMaps and claims
// of the build.
func (b *BuildResult) CrossCheck() error {
	var errs []error
	for _, w := range b.workloads() {
		errs = append(errs, b.checkPod(w)...)
	}
	for _, o := range b.Objects {
		var err error
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			err = selectorMatches(v.Spec.Selector, v.Spec.Template.Labels)
		case *corev1.Service:
			err = b.checkService(v)
		case *policyv1.PodDisruptionBudget:
			err = b.checkSelects(v.Spec.Selector)
		case *autoscalingv2.HorizontalPodAutoscaler:
			if t := v.Spec.ScaleTargetRef; !b.has(t.Kind, t.Name) {
				err = fmt.Errorf("scaleTargetRef %s %s is not in the build", t.Kind, t.Name)
			}
		case *networkingv1.NetworkPolicy:
			err = b.checkNetworkPolicy(v)
		case *monitoringv1.ServiceMonitor:
			err = b.checkServiceMonitor(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err))
		}
	}
	return errors.Join(errs...)
}

func selectorMatches(sel *metav1.LabelSelector, podLabels map[string]string) error {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	if !s.Matches(labels.Set(podLabels)) {
		return fmt.Errorf("selector %s does not match the pod template's labels %v", s, podLabels)
	}
	return nil
}

func (b *BuildResult) checkSelects(sel *metav1.LabelSelector) error {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	if len(b.selecting(s)) == 0 {
		return fmt.Errorf("selector %s selects no pod of the build", s)
	}
	return nil
}

// checkPod checks a pod template's probes and volumes.
func (b *BuildResult) checkPod(w workload) []error {
	var errs []error
	spec := &w.template.Spec
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for what, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if p == nil {
				continue
			}
			var err error
			switch {
			case p.HTTPGet != nil:
				err = portIn(p.HTTPGet.Port, c)
			case p.TCPSocket != nil:
				err = portIn(p.TCPSocket.Port, c)
			case p.GRPC != nil:
				err = portIn(intstr.FromInt32(p.GRPC.Port), c)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: container %s: %s: %w", w.ref, c.Name, what, err))
			}
		}
		for _, m := range c.VolumeMounts {
			if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
				errs = append(errs, fmt.Errorf("%s: container %s mounts volume %s, which the pod does not have", w.ref, c.Name, m.Name))
			}
		}
	}
	for _, v := range spec.Volumes {
		switch {
		case v.ConfigMap != nil && !b.has("ConfigMap", v.ConfigMap.Name):
			errs = append(errs, fmt.Errorf("%s: volume %s: ConfigMap %s is not in the build", w.ref, v.Name, v.ConfigMap.Name))
		case v.PersistentVolumeClaim != nil && !b.has("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName):
			errs = append(errs, fmt.Errorf("%s: volume %s: PersistentVolumeClaim %s is not in the build", w.ref, v.Name, v.PersistentVolumeClaim.ClaimName))
		}
	}
	return errs
}

// portIn checks that port (a name or a number) is one of c's ports.
func portIn(port intstr.IntOrString, c corev1.Container) error {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return nil
		}
	}
	return fmt.Errorf("port %s is not a port of container %s", port.String(), c.Name)
}

// podsPort checks that every pod of ws has port.
func podsPort(ws []workload, port intstr.IntOrString) error {
	for _, w := range ws {
		if !slices.ContainsFunc(w.template.Spec.Containers, func(c corev1.Container) bool { return portIn(port, c) == nil }) {
			return fmt.Errorf("port %s is not a container port of %s", port.String(), w.ref)
		}
	}
	return nil
}

func (b *BuildResult) checkService(s *corev1.Service) error {
	ws := b.selecting(labels.SelectorFromSet(s.Spec.Selector))
	if len(ws) == 0 {
		return fmt.Errorf("selector %v selects no pod of the build", s.Spec.Selector)
	}
	for _, p := range s.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		if err := podsPort(ws, target); err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
	}
	return nil
}

func (b *BuildResult) checkNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return fmt.Errorf("podSelector: %w", err)
	}
	ws := b.selecting(s)
	if len(ws) == 0 {
		return fmt.Errorf("podSelector %s selects no pod of the build", s)
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil {
				continue
			}
			if err := podsPort(ws, *p.Port); err != nil {
				return fmt.Errorf("ingress: %w", err)
			}
		}
	}
	return nil
}

func (b *BuildResult) checkServiceMonitor(sm *monitoringv1.ServiceMonitor) error {
	s, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	var services []*corev1.Service
	for _, o := range b.Objects {
		if v, ok := o.Value.(*corev1.Service); ok && s.Matches(labels.Set(v.Labels)) {
			services = append(services, v)
		}
	}
	if len(services) == 0 {
		return fmt.Errorf("selector %s selects no Service of the build", s)
	}
	for _, svc := range services {
		if sm.Spec.JobLabel != "" && svc.Labels[sm.Spec.JobLabel] == "" {
			return fmt.Errorf("service %s has no label %s (jobLabel)", svc.Name, sm.Spec.JobLabel)
		}
		for _, e := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
				return fmt.Errorf("endpoint port %q is not a port of Service %s", e.Port, svc.Name)
			}
		}
	}
	return nil
}
