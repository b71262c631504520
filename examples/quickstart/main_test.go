package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
)

func TestQuickstartPrintsTheDecisions(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`^request 1: allowed, tightest rule user-rps has 2 left$`,
		`^request 2: allowed, tightest rule user-rps has 1 left$`,
		`^request 3: allowed, tightest rule user-rps has 0 left$`,
		`^request 4: denied by user-rps, retry after [0-9.]+m?s$`,
		`^request 5: denied by user-rps, retry after [0-9.]+m?s$`,
		`^after settling: tenant-tpm has 400 of 1000 tokens left$`,
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, re := range want {
		if !regexp.MustCompile(re).Match(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], re)
		}
	}
}
