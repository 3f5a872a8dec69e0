package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The API groups and versions a Lading deployment may use. A kind outside them is an error: a
// typo in kind or apiVersion, a removed version (autoscaling/v2beta2), or a resource these
// checks do not know.
var addToScheme = []func(*runtime.Scheme) error{
	corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
	autoscalingv2.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme,
}

// strictDecoder decodes YAML into the typed struct of its apiVersion and kind, as the API
// server's strict field validation does: unknown fields and duplicate keys are errors, and field
// names match case-sensitively.
func strictDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	for _, add := range addToScheme {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true}), nil
}

// validateK8s decodes every document of a multi-document YAML stream strictly, then checks the
// rules of k8s/kustomization.yaml across the objects. It returns one line per problem; the
// error is for input it cannot read at all.
func validateK8s(data []byte) ([]string, error) {
	set, problems, err := decodeK8s(data)
	if err != nil {
		return nil, err
	}
	return append(problems, set.check()...), nil
}

// decodeK8s decodes every document strictly; a document that does not decode is a problem.
func decodeK8s(data []byte) (*objects, []string, error) {
	decoder, err := strictDecoder()
	if err != nil {
		return nil, nil, err
	}
	var problems []string
	set := &objects{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", n, err)
		}
		if empty, err := isEmptyDocument(doc); err != nil || empty {
			if err != nil {
				problems = append(problems, fmt.Sprintf("document %d: %v", n, err))
			}
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("document %d%s: %v", n, describe(doc), err))
			continue
		}
		set.add(obj)
	}
	if set.count == 0 {
		problems = append(problems, "no objects")
	}
	return set, problems, nil
}

// k8sEnv is the environment a Deployment's first container starts with, as far as the stream
// says: the ConfigMaps it takes whole, then its own `env` values (which win, as in the
// kubelet). Secrets are the user's: their names come back in secrets, their keys are unknown.
func k8sEnv(data []byte, deployment string) (env []string, secrets []string, err error) {
	set, problems, err := decodeK8s(data)
	if err == nil && len(problems) > 0 {
		err = errors.New(problems[0])
	}
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(set.deployments, func(d *appsv1.Deployment) bool { return d.Name == deployment })
	if i < 0 || len(set.deployments[i].Spec.Template.Spec.Containers) == 0 {
		return nil, nil, fmt.Errorf("no Deployment %s with a container", deployment)
	}
	d := set.deployments[i]
	c := d.Spec.Template.Spec.Containers[0]
	vars := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			j := slices.IndexFunc(set.configMaps, func(m *corev1.ConfigMap) bool {
				return m.Namespace == d.Namespace && m.Name == from.ConfigMapRef.Name
			})
			if j < 0 {
				return nil, nil, fmt.Errorf("Deployment %s: no ConfigMap %s", deployment, from.ConfigMapRef.Name)
			}
			for k, v := range set.configMaps[j].Data {
				vars[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			secrets = append(secrets, from.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			vars[e.Name] = e.Value
		}
	}
	return keyValues(vars), secrets, nil
}

// isEmptyDocument: only comments or nothing (kustomize never writes one; a hand-written stream may).
func isEmptyDocument(doc []byte) (bool, error) {
	j, err := yaml.YAMLToJSON(doc)
	return bytes.Equal(bytes.TrimSpace(j), []byte("null")), err
}

// describe names a document's object for a message, as far as a lenient read can tell: " (Deployment lading/gateway)".
func describe(doc []byte) string {
	var head metav1.PartialObjectMetadata
	if yaml.Unmarshal(doc, &head) != nil || head.Kind == "" {
		return ""
	}
	name := head.Name
	if head.Namespace != "" {
		name = head.Namespace + "/" + name
	}
	return fmt.Sprintf(" (%s %s)", head.Kind, name)
}

// objects holds the decoded objects the rules look at, by kind.
type objects struct {
	count       int
	deployments []*appsv1.Deployment
	jobs        []*batchv1.Job
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	policies    []*networkingv1.NetworkPolicy
	claims      []*corev1.PersistentVolumeClaim
	configMaps  []*corev1.ConfigMap
}

func (s *objects) add(obj runtime.Object) {
	s.count++
	_ = collect(&s.deployments, obj) || collect(&s.jobs, obj) || collect(&s.services, obj) ||
		collect(&s.pdbs, obj) || collect(&s.hpas, obj) || collect(&s.policies, obj) ||
		collect(&s.claims, obj) || collect(&s.configMaps, obj)
}

// collect appends obj to list when it is a *T, and says whether it was.
func collect[T any](list *[]*T, obj any) bool {
	o, ok := obj.(*T)
	if ok {
		*list = append(*list, o)
	}
	return ok
}

// check applies the deployment's rules: every pod hardened and bounded, stateless Deployments
// (no shared volume), one PodDisruptionBudget each, autoscalers that own their Deployment's
// replica count, Services that select pods, and NetworkPolicies around every pod.
func (s *objects) check() []string {
	var p []string
	for _, c := range s.claims {
		if slices.Contains(c.Spec.AccessModes, corev1.ReadWriteMany) {
			p = append(p, fmt.Sprintf("PersistentVolumeClaim %s: ReadWriteMany (blob bytes belong in object storage)", c.Name))
		}
	}
	if len(s.policies) == 0 {
		p = append(p, "no NetworkPolicy: every pod would accept traffic from anywhere")
	}
	for _, d := range s.deployments {
		where := "Deployment " + d.Name
		p = append(p, checkPod(where, &d.Spec.Template.Spec, true)...)
		pods := labels.Set(d.Spec.Template.Labels)
		if !s.hasPDB(d.Namespace, pods) {
			p = append(p, where+": no PodDisruptionBudget selects its pods")
		}
		for _, kind := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
			if !s.hasPolicy(d.Namespace, pods, kind) {
				p = append(p, fmt.Sprintf("%s: no NetworkPolicy with policyType %s selects its pods", where, kind))
			}
		}
	}
	for _, j := range s.jobs {
		p = append(p, checkPod("Job "+j.Name, &j.Spec.Template.Spec, false)...)
	}
	for _, h := range s.hpas {
		p = append(p, s.checkHPA(h)...)
	}
	for _, svc := range s.services {
		p = append(p, s.checkService(svc)...)
	}
	return p
}

func (s *objects) hasPDB(namespace string, pods labels.Set) bool {
	return slices.ContainsFunc(s.pdbs, func(b *policyv1.PodDisruptionBudget) bool {
		return b.Namespace == namespace && selects(b.Spec.Selector, pods)
	})
}

func (s *objects) hasPolicy(namespace string, pods labels.Set, kind networkingv1.PolicyType) bool {
	return slices.ContainsFunc(s.policies, func(np *networkingv1.NetworkPolicy) bool {
		return np.Namespace == namespace && slices.Contains(np.Spec.PolicyTypes, kind) && selects(&np.Spec.PodSelector, pods)
	})
}

// selects: the label selector is valid and matches the pods' labels (an empty one matches all).
func selects(selector *metav1.LabelSelector, pods labels.Set) bool {
	if selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	return err == nil && sel.Matches(pods)
}

func (s *objects) deployment(namespace, name string) *appsv1.Deployment {
	i := slices.IndexFunc(s.deployments, func(d *appsv1.Deployment) bool { return d.Namespace == namespace && d.Name == name })
	if i < 0 {
		return nil
	}
	return s.deployments[i]
}

// checkHPA: it scales a Deployment of this set, and that Deployment leaves the replica count to
// it (a count in the manifest would reset the autoscaler's on every apply).
func (s *objects) checkHPA(h *autoscalingv2.HorizontalPodAutoscaler) []string {
	where := "HorizontalPodAutoscaler " + h.Name
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
		return []string{fmt.Sprintf("%s: scales %s %s, not an apps/v1 Deployment", where, ref.APIVersion, ref.Kind)}
	}
	d := s.deployment(h.Namespace, ref.Name)
	if d == nil {
		return []string{fmt.Sprintf("%s: no Deployment %s to scale", where, ref.Name)}
	}
	if d.Spec.Replicas != nil {
		return []string{fmt.Sprintf("%s: Deployment %s sets replicas, which every apply would reset the autoscaler to", where, d.Name)}
	}
	return nil
}

// checkService: its selector picks the pods of a Deployment, and a named targetPort is one of
// their container ports.
func (s *objects) checkService(svc *corev1.Service) []string {
	where := "Service " + svc.Name
	if len(svc.Spec.Selector) == 0 {
		return []string{where + ": no selector"}
	}
	i := slices.IndexFunc(s.deployments, func(d *appsv1.Deployment) bool {
		return d.Namespace == svc.Namespace && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
	})
	if i < 0 {
		return []string{where + ": its selector matches no Deployment's pods"}
	}
	var p []string
	for _, port := range svc.Spec.Ports {
		if name := port.TargetPort.StrVal; name != "" && !hasPortNamed(s.deployments[i].Spec.Template.Spec.Containers, name) {
			p = append(p, fmt.Sprintf("%s: targetPort %q is no container port of Deployment %s", where, name, s.deployments[i].Name))
		}
	}
	return p
}

func hasPortNamed(containers []corev1.Container, name string) bool {
	return slices.ContainsFunc(containers, func(c corev1.Container) bool {
		return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
	})
}

// checkPod: no persistent volume (the apps are stateless), and every container bounded and
// hardened; long-running pods (probes) also answer the kubelet's probes on ports they have.
func checkPod(where string, pod *corev1.PodSpec, probes bool) []string {
	var p []string
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil {
			p = append(p, fmt.Sprintf("%s: volume %s is a PersistentVolumeClaim (state belongs in PostgreSQL and S3)", where, v.Name))
		}
	}
	for i := range pod.InitContainers {
		p = append(p, checkContainer(where, pod, &pod.InitContainers[i], false)...)
	}
	for i := range pod.Containers {
		p = append(p, checkContainer(where, pod, &pod.Containers[i], probes)...)
	}
	return p
}

func checkContainer(where string, pod *corev1.PodSpec, c *corev1.Container, probes bool) []string {
	where = fmt.Sprintf("%s, container %s", where, c.Name)
	var p []string
	problem := func(format string, args ...any) { p = append(p, where+": "+fmt.Sprintf(format, args...)) }
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			problem("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			problem("no %s limit", r)
		}
	}
	if probes {
		for _, pr := range []struct {
			name     string
			probe    *corev1.Probe
			required bool
		}{{"livenessProbe", c.LivenessProbe, true}, {"readinessProbe", c.ReadinessProbe, true}, {"startupProbe", c.StartupProbe, false}} {
			switch {
			case pr.probe == nil && pr.required:
				problem("no %s", pr.name)
			case pr.probe != nil && !probePortExists(pr.probe, c):
				problem("%s names a port the container does not have", pr.name)
			}
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	ps := pod.SecurityContext
	if ps == nil {
		ps = &corev1.PodSecurityContext{}
	}
	if !isTrue(firstSet(sc.RunAsNonRoot, ps.RunAsNonRoot)) {
		problem("runAsNonRoot is not true")
	}
	if uid := firstSet(sc.RunAsUser, ps.RunAsUser); uid == nil || *uid == 0 {
		problem("no numeric non-root runAsUser (the kubelet cannot verify runAsNonRoot for a named image user)")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		problem("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		problem("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		problem("capabilities do not drop ALL")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = ps.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		problem("no seccompProfile RuntimeDefault (or Localhost)")
	}
	return p
}

// probePortExists: a probe's named port is one of the container's (a number is taken as is).
func probePortExists(probe *corev1.Probe, c *corev1.Container) bool {
	var name string
	switch {
	case probe.HTTPGet != nil:
		name = probe.HTTPGet.Port.StrVal
	case probe.TCPSocket != nil:
		name = probe.TCPSocket.Port.StrVal
	}
	return name == "" || hasPortNamed([]corev1.Container{*c}, name)
}

// firstSet: the container's setting when it has one, else the pod's.
func firstSet[T any](container, pod *T) *T {
	if container != nil {
		return container
	}
	return pod
}

func isTrue(b *bool) bool { return b != nil && *b }
