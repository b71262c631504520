package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result is one line of standard benchmark output.
type Result struct {
	// Name is the benchmark's name without "Benchmark" and without the
	// -GOMAXPROCS suffix, as "HotKey/tollgate".
	Name string
	// N is the number of iterations.
	N int64
	// Metrics holds each value by its unit: "ns/op", "B/op", "allocs/op",
	// "MB/s" and custom ones such as "bytes/key".
	Metrics map[string]float64
}

// Output is what one run of the benchmark binary printed.
type Output struct {
	Results []Result
	// Skipped holds the reasons of skipped benchmarks, by name.
	Skipped map[string]string
	// Failed names benchmarks that failed, with their messages.
	Failed map[string]string
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// trimName turns "BenchmarkHotKey/tollgate-2" into "HotKey/tollgate".
func trimName(s string) string {
	return procsSuffix.ReplaceAllString(strings.TrimPrefix(s, "Benchmark"), "")
}

// parseValues reads "N v unit v unit ...", the part of a result line after
// the name.
func parseValues(fields []string) (int64, map[string]float64, bool) {
	if len(fields) < 3 || len(fields)%2 == 0 {
		return 0, nil, false
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || n <= 0 {
		return 0, nil, false
	}
	m := make(map[string]float64, len(fields)/2)
	for i := 1; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return 0, nil, false
		}
		m[fields[i+1]] = v
	}
	return n, m, true
}

// Parse reads the output of `go test -bench`. Besides result lines it
// understands a name printed on its own line when the benchmark logged
// something before its figures, and "--- SKIP" / "--- FAIL" blocks, whose
// indented lines are their messages.
func Parse(r io.Reader) (Output, error) {
	out := Output{Skipped: map[string]string{}, Failed: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var pending string // a name whose figures have not been printed yet
	var block map[string]string
	var blockName string
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case strings.HasPrefix(line, "--- SKIP: ") || strings.HasPrefix(line, "--- FAIL: "):
			block, blockName = out.Skipped, trimName(fields[2])
			if fields[1] == "FAIL:" {
				block = out.Failed
			}
			block[blockName] = ""
			continue
		case block != nil && (strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")):
			msg := strings.TrimSpace(line)
			if block[blockName] != "" {
				msg = block[blockName] + "; " + msg
			}
			block[blockName] = msg
			continue
		}
		block = nil
		if strings.HasPrefix(fields[0], "Benchmark") {
			if n, m, ok := parseValues(fields[1:]); ok {
				out.Results = append(out.Results, Result{Name: trimName(fields[0]), N: n, Metrics: m})
				pending = ""
			} else if len(fields) == 1 {
				pending = trimName(fields[0])
			}
			continue
		}
		if pending != "" {
			if n, m, ok := parseValues(fields); ok {
				out.Results = append(out.Results, Result{Name: pending, N: n, Metrics: m})
				pending = ""
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading benchmark output: %w", err)
	}
	return out, nil
}
