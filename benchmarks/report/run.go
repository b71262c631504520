package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

const benchPkg = "github.com/tollgate-go/tollgate/benchmarks"

// binary is the compiled benchmark binary of package benchmarks.
type binary struct {
	path string // the executable
	dir  string // the package's directory: benchmarks read fixtures relative to it
}

// build compiles the benchmarks' test binary into tmp.
func build(ctx context.Context, tmp string) (binary, error) {
	dir, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", benchPkg).Output()
	if err != nil {
		return binary{}, fmt.Errorf("go list %s: %w (run the report inside the tollgate module)", benchPkg, err)
	}
	bin := binary{path: filepath.Join(tmp, "benchmarks.test"), dir: strings.TrimSpace(string(dir))}
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin.path, benchPkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return binary{}, fmt.Errorf("go test -c %s: %w", benchPkg, err)
	}
	return bin, nil
}

// benchPattern returns the -test.bench pattern that selects exactly the
// benchmark name ("HotKey/tollgate"): each level anchored and quoted.
func benchPattern(name string) string {
	parts := strings.Split("Benchmark"+name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// run runs one benchmark once and returns what it printed, parsed; raw, when
// not nil, receives the output as it was.
func (bin binary) run(ctx context.Context, name, benchtime string, raw io.Writer) (Output, error) {
	cmd := exec.CommandContext(ctx, bin.path,
		"-test.v", "-test.run=^$", "-test.bench="+benchPattern(name), "-test.benchmem",
		"-test.count=1", "-test.benchtime="+benchtime)
	cmd.Dir = bin.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	if raw != nil {
		raw.Write(out.Bytes())
	}
	parsed, err := Parse(&out)
	if err != nil {
		return parsed, err
	}
	if runErr != nil && len(parsed.Failed) == 0 {
		return parsed, fmt.Errorf("%s: %w\n%s", name, runErr, out.String())
	}
	return parsed, nil
}
