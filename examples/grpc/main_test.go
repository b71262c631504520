package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRetryWaitsForPushback: with 5 calls a second and no burst, calls
// made back to back are refused once each, and grpc-go retries them after
// the server's pushback, not after the policy's 10ms backoff (which would
// be refused again, up to the 4 attempts allowed, and fail the call).
func TestRetryWaitsForPushback(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-calls", "5", "-rate", "5", "-burst", "1"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines, want 8:\n%s", len(lines), &out)
	}
	call := regexp.MustCompile(`^call (\d): "Hello, alice" in (\S+), (1 attempt|2 attempts; the server asked to wait (\S+))$`)
	retried := 0
	for i, line := range lines[1:6] {
		m := call.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(i+1) {
			t.Fatalf("line %q, want call %d with 1 or 2 attempts", line, i+1)
		}
		if m[4] == "" {
			continue // a slow machine may have taken 200ms between two calls
		}
		retried++
		took, err1 := time.ParseDuration(m[2])
		pushback, err2 := time.ParseDuration(m[4])
		if err1 != nil || err2 != nil {
			t.Fatalf("line %q: %v %v", line, err1, err2)
		}
		if pushback <= 0 || pushback > 200*time.Millisecond {
			t.Errorf("call %d: pushback %v, want up to 200ms (5 a second)", i+1, pushback)
		}
		if took < pushback {
			t.Errorf("call %d took %v, less than the pushback of %v: the retry did not wait", i+1, took, pushback)
		}
	}
	if retried < 2 {
		t.Errorf("%d of 4 calls after the first were retried, want most:\n%s", retried, &out)
	}
	if lines[6] != "the service ran 5 times for 5 calls" {
		t.Errorf("line %q: refused attempts must not reach the service", lines[6])
	}
	if !regexp.MustCompile(`^without a retry policy: ResourceExhausted \(RetryInfo says retry in \d+(\.\d+)?ms\)$`).MatchString(lines[7]) {
		t.Errorf("line %q, want RESOURCE_EXHAUSTED with RetryInfo", lines[7])
	}
}
