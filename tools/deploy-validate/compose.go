package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// validateCompose loads a compose file as the compose CLI does (interpolation from environ,
// `${VAR:?message}` failing when VAR is unset, merge keys, then validation against the Compose
// Specification's JSON schema, which refuses unknown fields), and checks the rules of Lading's
// compose file. It returns one line per rule broken; the error is the loader's.
func validateCompose(path string, environ []string) ([]string, error) {
	project, err := loadCompose(path, environ)
	if err != nil {
		return nil, err
	}
	return checkCompose(project), nil
}

func loadCompose(path string, environ []string) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.NewMapping(environ),
	}, func(o *loader.Options) { o.SetProjectName("lading", true) })
}

// composeEnv is a service's environment after interpolation (a variable listed without a value
// is left out: the container would take it from the host).
func composeEnv(path string, environ []string, service string) ([]string, error) {
	project, err := loadCompose(path, environ)
	if err != nil {
		return nil, err
	}
	s, ok := project.Services[service]
	if !ok {
		return nil, fmt.Errorf("no service %s", service)
	}
	vars := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			vars[k] = *v
		}
	}
	return keyValues(vars), nil
}

// checkCompose: every long-running service has a health check and every dependency waits for
// one (or for a one-shot's success), no volume is shared between services (blob bytes live in
// object storage, not on a shared disk), and no replicated service publishes a fixed host port
// (the second replica could not bind it; port ranges with replicas are unreliable in compose v2).
func checkCompose(project *types.Project) []string {
	var p []string
	oneShots := map[string]bool{}
	for _, name := range project.ServiceNames() {
		deps := project.Services[name].DependsOn
		for _, dep := range slices.Sorted(maps.Keys(deps)) {
			switch d := deps[dep]; d.Condition {
			case types.ServiceConditionCompletedSuccessfully:
				oneShots[dep] = true
			case types.ServiceConditionHealthy:
			default:
				p = append(p, fmt.Sprintf("service %s: depends on %s with condition %q; wait for service_healthy (or service_completed_successfully)", name, dep, d.Condition))
			}
		}
	}
	mounts := map[string][]string{}
	for _, name := range project.ServiceNames() {
		s := project.Services[name]
		if oneShots[name] {
			if s.Restart != "" && s.Restart != types.RestartPolicyNo {
				p = append(p, fmt.Sprintf("service %s: a one-shot others wait to complete, but restart is %q", name, s.Restart))
			}
		} else if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			p = append(p, fmt.Sprintf("service %s: no healthcheck", name))
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				mounts[v.Source] = append(mounts[v.Source], name)
			}
		}
		if s.GetScale() > 1 {
			for _, port := range s.Ports {
				if port.Published != "" {
					p = append(p, fmt.Sprintf("service %s: %d replicas, but publishes host port %s", name, s.GetScale(), port.Published))
				}
			}
		}
	}
	for _, volume := range slices.Sorted(maps.Keys(mounts)) {
		if users := mounts[volume]; len(users) > 1 {
			p = append(p, fmt.Sprintf("volume %s: shared by %s", volume, strings.Join(users, ", ")))
		}
	}
	return p
}
