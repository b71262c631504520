package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRetryWaitsForPushback: with 10 calls a second and bursts of 2, the
// third and later calls are refused once, and grpc-go retries each after
// the server's pushback, not after the policy's 10ms backoff (which would
// be refused again, up to the 4 attempts allowed, and fail the call).
func TestRetryWaitsForPushback(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-calls", "5", "-rate", "10", "-burst", "2"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines, want 8:\n%s", len(lines), &out)
	}
	call := regexp.MustCompile(`^call (\d): "Hello, alice" in (\S+), (1 attempt|2 attempts; the server asked to wait (\S+))$`)
	for i, line := range lines[1:6] {
		m := call.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(i+1) {
			t.Fatalf("line %q, want call %d", line, i+1)
		}
		took, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if m[3] != "1 attempt" {
				t.Errorf("call %d: %s, want 1 attempt within the burst", i+1, m[3])
			}
			continue
		}
		pushback, err := time.ParseDuration(m[4])
		if err != nil {
			t.Fatalf("call %d: %q, want 2 attempts with a pushback", i+1, line)
		}
		if pushback < 50*time.Millisecond || pushback > 100*time.Millisecond {
			t.Errorf("call %d: pushback %v, want about 100ms (10 a second)", i+1, pushback)
		}
		if took < pushback {
			t.Errorf("call %d took %v, less than the pushback of %v: the retry did not wait", i+1, took, pushback)
		}
	}
	if lines[6] != "the service ran 5 times for 5 calls" {
		t.Errorf("line %q: refused attempts must not reach the service", lines[6])
	}
	if !regexp.MustCompile(`^without a retry policy: ResourceExhausted \(RetryInfo says retry in \d+(\.\d+)?ms\)$`).MatchString(lines[7]) {
		t.Errorf("line %q, want RESOURCE_EXHAUSTED with RetryInfo", lines[7])
	}
}
