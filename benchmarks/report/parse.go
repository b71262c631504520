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

// Parse reads the output of `go test -bench`, with or without -v. Besides
// result lines it understands a name printed on its own line (always with
// -v; without it, when the benchmark logged before its figures), and
// "--- SKIP", "--- FAIL" and "--- BENCH" lines with the indented messages
// that precede them (-v) or follow them.
func Parse(r io.Reader) (Output, error) {
	out := Output{Skipped: map[string]string{}, Failed: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var (
		pending string   // a name whose figures have not been printed yet
		logged  []string // indented lines since the last name
		block   map[string]string
		inBlock string // the name of the --- block that indented lines extend
	)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			if block != nil && inBlock != "" {
				block[inBlock] = join(block[inBlock], strings.TrimSpace(line))
			} else if pending != "" {
				logged = append(logged, strings.TrimSpace(line))
			}
			continue
		}
		block, inBlock = nil, ""
		if strings.HasPrefix(line, "--- ") && len(fields) >= 3 {
			name := trimName(fields[2])
			switch fields[1] {
			case "SKIP:":
				block = out.Skipped
			case "FAIL:":
				block = out.Failed
			default: // "--- BENCH:": a benchmark's log, printed after its figures
				block = map[string]string{}
			}
			block[name] = strings.Join(logged, "; ")
			inBlock, logged, pending = name, nil, ""
			continue
		}
		if strings.HasPrefix(fields[0], "Benchmark") {
			if n, m, ok := parseValues(fields[1:]); ok {
				out.Results = append(out.Results, Result{Name: trimName(fields[0]), N: n, Metrics: m})
				pending = ""
			} else if len(fields) == 1 {
				pending = trimName(fields[0])
			}
			logged = nil
			continue
		}
		if pending != "" {
			if n, m, ok := parseValues(fields); ok {
				out.Results = append(out.Results, Result{Name: pending, N: n, Metrics: m})
				pending, logged = "", nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading benchmark output: %w", err)
	}
	return out, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
