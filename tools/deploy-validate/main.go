// Command deploy-validate checks Lading's deployment files offline, with no cluster and no
// Docker engine:
//
//	deploy-validate k8s FILE|-                    the output of `kustomize build k8s/`
//	deploy-validate compose FILE                  a docker-compose.yml (variables from the environment)
//	deploy-validate k8s-env FILE|- DEPLOYMENT     the environment a Deployment's container gets
//	deploy-validate compose-env FILE SERVICE      the environment a compose service gets
//
// The first two decode strictly (an unknown field, an unknown kind or a duplicate key is an
// error, as the API server or the compose CLI would report it), then apply the rules Lading's
// deployments promise (see k8s.go and compose.go); they print every problem and exit 1 if there
// is any. The env modes print KEY=VALUE entries, each ended by a NUL byte, for
// `lading config check` to judge (scripts/validate-deploy); the names of Secrets the
// container also reads go to stderr. Exit 2 is a usage error.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
)

const usage = `usage: deploy-validate k8s FILE|-
       deploy-validate compose FILE
       deploy-validate k8s-env FILE|- DEPLOYMENT
       deploy-validate compose-env FILE SERVICE`

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 2 && (args[0] == "k8s" || args[0] == "compose"):
		validate(args[0], args[1])
	case len(args) == 3 && args[0] == "k8s-env":
		data, err := readInput(args[1])
		var env, secrets []string
		if err == nil {
			env, secrets, err = k8sEnv(data, args[2])
		}
		for _, s := range secrets {
			fmt.Fprintf(os.Stderr, "Deployment %s also reads Secret %s\n", args[2], s)
		}
		printEnv(env, err)
	case len(args) == 3 && args[0] == "compose-env":
		env, err := composeEnv(args[1], os.Environ(), args[2])
		printEnv(env, err)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

func validate(mode, path string) {
	var problems []string
	var err error
	if mode == "k8s" {
		var data []byte
		if data, err = readInput(path); err == nil {
			problems, err = validateK8s(data)
		}
	} else {
		problems, err = validateCompose(path, os.Environ())
	}
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "%s: %s is invalid:\n", mode, path)
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "  - %s\n", p)
		}
		os.Exit(1)
	}
	fmt.Printf("%s: %s is valid\n", mode, path)
}

func printEnv(env []string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, kv := range env {
		fmt.Printf("%s\x00", kv)
	}
}

// keyValues: KEY=VALUE entries, sorted by key.
func keyValues(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}
