package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientBuildHoldsNoServer keeps the laptops' build small and portable:
// for every platform `make dist` targets, the client build's dependencies
// are cohort's API types and client, cobra and the standard library; none
// of the server (store, drivers, Pulumi, the queue, the API server).
func TestClientBuildHoldsNoServer(t *testing.T) {
	allowed := []string{
		"github.com/cohortdev/cohort/cmd/cohort",
		"github.com/cohortdev/cohort/client",
		"github.com/cohortdev/cohort/cost",
		"github.com/cohortdev/cohort/catalog",
		"github.com/spf13/",
		"github.com/inconshreveable/mousetrap", // cobra, on Windows
		"golang.org/x/sys/",
		"vendor/",
	}
	for _, target := range []string{"linux/amd64", "darwin/arm64", "windows/amd64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "list", "-tags", "client", "-deps", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: go list: %v\n%s", target, err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if pkg == "github.com/cohortdev/cohort" || !strings.Contains(strings.Split(pkg, "/")[0], ".") && !strings.HasPrefix(pkg, "vendor/") {
				continue // the API types, and the standard library
			}
			if !hasAnyPrefix(pkg, allowed) {
				t.Errorf("%s: the client build depends on %s", target, pkg)
			}
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
