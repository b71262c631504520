package main

import (
	"reflect"
	"strings"
	"testing"
)

// Samples of real `go test -bench` output (go1.26, linux/amd64, 2 cores).
const (
	// The suite's output without -v: standard, MB/s and custom metrics.
	plainOutput = `goos: linux
goarch: amd64
pkg: github.com/tollgate-go/tollgate/benchmarks
cpu: Oxide Virtual Turin-like Processor             
BenchmarkHotKey/tollgate-2   	  553239	       398.2 ns/op	       0 B/op	       0 allocs/op
BenchmarkHotKey/x-time-rate-2         	  919261	       155.2 ns/op	       0 B/op	       0 allocs/op
BenchmarkBytesPerKey/tollgate-2                            	       1	2180444915 ns/op	        85.82 bytes/key	118238088 B/op	 2005157 allocs/op
BenchmarkRedis/goroutines=64/evalsha-return1-2             	    3478	     31040 ns/op	     249 B/op	       7 allocs/op
BenchmarkSSENoUsage/Meter-2                                	      49	  12238969 ns/op	 566.22 MB/s	         0 allocs/event	    2704 B/op	      10 allocs/op
PASS
ok  	github.com/tollgate-go/tollgate/benchmarks	14.771s
`
	// With -v, as the report runs it: each name on its own line first.
	verboseOutput = `goos: linux
goarch: amd64
pkg: github.com/tollgate-go/tollgate/benchmarks
cpu: Oxide Virtual Turin-like Processor             
BenchmarkHotKey
BenchmarkHotKey/tollgate
BenchmarkHotKey/tollgate-2         	    1000	     12202 ns/op	      14 B/op	       0 allocs/op
PASS
`
	// With -v, when redis-server is missing.
	skippedOutput = `goos: linux
goarch: amd64
pkg: github.com/tollgate-go/tollgate/benchmarks
cpu: Oxide Virtual Turin-like Processor             
BenchmarkRedis
    redis_test.go:40: redis-server not found in PATH: install it (apt-get install redis-server) to run this test
--- SKIP: BenchmarkRedis
PASS
`
	// With -v: a benchmark that logged before its figures, a skipped
	// sub-benchmark and a failed benchmark.
	mixedVerboseOutput = `goos: linux
goarch: amd64
pkg: samp
cpu: Oxide Virtual Turin-like Processor             
BenchmarkLogs
    s_test.go:3: warming up
BenchmarkLogs-2    	      10	        44.00 ns/op	         3.500 bytes/key	       0 B/op	       0 allocs/op
BenchmarkSkips
BenchmarkSkips/sub
    s_test.go:4: redis-server not found in PATH: install it
--- SKIP: BenchmarkSkips/sub
BenchmarkFails
    s_test.go:5: denied: boom
--- FAIL: BenchmarkFails
FAIL
exit status 1
FAIL	samp	0.177s
FAIL
`
	// The same without -v: the log follows the figures, the failure's
	// message follows its line.
	mixedPlainOutput = `goos: linux
goarch: amd64
pkg: samp
cpu: Oxide Virtual Turin-like Processor             
BenchmarkLogs-2    	      10	        55.10 ns/op	         3.500 bytes/key	       0 B/op	       0 allocs/op
--- BENCH: BenchmarkLogs-2
    s_test.go:3: warming up
--- FAIL: BenchmarkFails
    s_test.go:5: denied: boom
FAIL
exit status 1
FAIL	samp	0.048s
FAIL
`
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          string
		want        []Result
		wantSkipped map[string]string
		wantFailed  map[string]string
	}{
		{
			name: "plain",
			in:   plainOutput,
			want: []Result{
				{"HotKey/tollgate", 553239, map[string]float64{"ns/op": 398.2, "B/op": 0, "allocs/op": 0}},
				{"HotKey/x-time-rate", 919261, map[string]float64{"ns/op": 155.2, "B/op": 0, "allocs/op": 0}},
				{"BytesPerKey/tollgate", 1, map[string]float64{"ns/op": 2180444915, "bytes/key": 85.82, "B/op": 118238088, "allocs/op": 2005157}},
				{"Redis/goroutines=64/evalsha-return1", 3478, map[string]float64{"ns/op": 31040, "B/op": 249, "allocs/op": 7}},
				{"SSENoUsage/Meter", 49, map[string]float64{"ns/op": 12238969, "MB/s": 566.22, "allocs/event": 0, "B/op": 2704, "allocs/op": 10}},
			},
		},
		{
			name: "verbose",
			in:   verboseOutput,
			want: []Result{{"HotKey/tollgate", 1000, map[string]float64{"ns/op": 12202, "B/op": 14, "allocs/op": 0}}},
		},
		{
			name:        "skipped",
			in:          skippedOutput,
			wantSkipped: map[string]string{"Redis": "redis_test.go:40: redis-server not found in PATH: install it (apt-get install redis-server) to run this test"},
		},
		{
			name:        "mixed verbose",
			in:          mixedVerboseOutput,
			want:        []Result{{"Logs", 10, map[string]float64{"ns/op": 44, "bytes/key": 3.5, "B/op": 0, "allocs/op": 0}}},
			wantSkipped: map[string]string{"Skips/sub": "s_test.go:4: redis-server not found in PATH: install it"},
			wantFailed:  map[string]string{"Fails": "s_test.go:5: denied: boom"},
		},
		{
			name:       "mixed plain",
			in:         mixedPlainOutput,
			want:       []Result{{"Logs", 10, map[string]float64{"ns/op": 55.1, "bytes/key": 3.5, "B/op": 0, "allocs/op": 0}}},
			wantFailed: map[string]string{"Fails": "s_test.go:5: denied: boom"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got.Results, tc.want) {
				t.Errorf("results:\n got %+v\nwant %+v", got.Results, tc.want)
			}
			if tc.wantSkipped == nil {
				tc.wantSkipped = map[string]string{}
			}
			if tc.wantFailed == nil {
				tc.wantFailed = map[string]string{}
			}
			if !reflect.DeepEqual(got.Skipped, tc.wantSkipped) {
				t.Errorf("skipped: got %q, want %q", got.Skipped, tc.wantSkipped)
			}
			if !reflect.DeepEqual(got.Failed, tc.wantFailed) {
				t.Errorf("failed: got %q, want %q", got.Failed, tc.wantFailed)
			}
		})
	}
}

func TestTrimName(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkHotKey/tollgate-2":                      "HotKey/tollgate",
		"BenchmarkHotKey/tollgate":                        "HotKey/tollgate",
		"BenchmarkRedis/goroutines=64/tollgate-4rules-16": "Redis/goroutines=64/tollgate-4rules",
		"BenchmarkSSE/io.Copy-2":                          "SSE/io.Copy",
	} {
		if got := trimName(in); got != want {
			t.Errorf("trimName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBenchPattern(t *testing.T) {
	for in, want := range map[string]string{
		"HotKey/tollgate":                     `^BenchmarkHotKey$/^tollgate$`,
		"SSE/io.Copy":                         `^BenchmarkSSE$/^io\.Copy$`,
		"Redis/goroutines=64/evalsha-return1": `^BenchmarkRedis$/^goroutines=64$/^evalsha-return1$`,
	} {
		if got := benchPattern(in); got != want {
			t.Errorf("benchPattern(%q) = %q, want %q", in, got, want)
		}
	}
}
