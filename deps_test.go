package tollgate

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tollgate-go/tollgate"

// nonStandardDeps lists the non-standard-library packages that pkg depends
// on, itself excluded, as `go list -deps` reports them.
func nonStandardDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	var deps []string
	for _, d := range strings.Fields(string(out)) {
		if d != pkg {
			deps = append(deps, d)
		}
	}
	return deps
}

func packages(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func under(pkg, dir string) bool {
	p := module + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

// TestDependencyRules enforces ARCHITECTURE.md §2.
func TestDependencyRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to check dependencies: %v", err)
	}
	all := packages(t)
	otelAPI := map[string]bool{}
	for _, api := range []string{"go.opentelemetry.io/otel", "go.opentelemetry.io/otel/metric", "go.opentelemetry.io/otel/trace"} {
		otelAPI[api] = true
		for _, d := range nonStandardDeps(t, api) {
			otelAPI[d] = true
		}
	}
	for _, pkg := range all {
		deps := nonStandardDeps(t, pkg)
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		for _, d := range deps {
			// Rule 4: nothing imports examples or benchmarks.
			if (under(d, "examples") || under(d, "benchmarks")) && !under(pkg, "examples") && !under(pkg, "benchmarks") {
				t.Errorf("%s imports %s: nothing may import examples or benchmarks", rel, d)
			}
			switch {
			// Rule 1: the leaves import only the standard library.
			case rel == "algorithms" || rel == "dimensions" || rel == "tokens":
				t.Errorf("%s imports %s: it may import only the standard library", rel, d)
			// Rule 2: stores never import the engine or what sits on it.
			case under(pkg, "store") && (under(d, "limiter") || under(d, "policy") || under(d, "middleware") || under(d, "ledger")):
				t.Errorf("%s imports %s: a store may not import limiter, policy, ledger or middleware", rel, d)
			// Rule 3: the engine links nothing heavier than the OpenTelemetry API.
			case rel == "limiter" && !limiterMayImport(d, otelAPI):
				t.Errorf("limiter imports %s: it may import only algorithms, dimensions, store, tokens and the OpenTelemetry API (otel, otel/metric, otel/trace and what they link), never its SDK", d)
			}
		}
	}
}

func limiterMayImport(d string, otelAPI map[string]bool) bool {
	for _, ok := range []string{"algorithms", "dimensions", "tokens"} {
		if d == module+"/"+ok {
			return true
		}
	}
	if d == module+"/store" { // the contract, not an implementation
		return true
	}
	// The OpenTelemetry API for metrics and spans, and what it links itself
	// (attribute and its hash, the global providers): never the SDK.
	return otelAPI[d] && !strings.HasPrefix(d, "go.opentelemetry.io/otel/sdk")
}
