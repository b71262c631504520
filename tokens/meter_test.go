package tokens

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

type expectedUsage struct {
	Input  int64 `json:"input_tokens"`
	Output int64 `json:"output_tokens"`
	Total  int64 `json:"total_tokens"`
}

func loadExpected(t testing.TB) map[string]*expectedUsage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]*expectedUsage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureOptions returns the headers a proxy would see for a fixture.
func fixtureOptions(name string) []MeterOption {
	switch {
	case strings.HasSuffix(name, ".sse"):
		return []MeterOption{WithContentType("text/event-stream; charset=utf-8")}
	case strings.HasSuffix(name, ".ndjson"):
		return []MeterOption{WithContentType("application/x-ndjson")}
	case strings.HasSuffix(name, ".gz"):
		return []MeterOption{WithContentType("application/json"), WithContentEncoding("gzip")}
	}
	return []MeterOption{WithContentType("application/json")}
}

// feed writes b to a new meter in the slices given by cut and returns the
// result as expected.json would spell it.
func meterResult(t testing.TB, b []byte, opts []MeterOption, cut func(rest []byte) int) *expectedUsage {
	t.Helper()
	m := NewMeter(opts...)
	for len(b) > 0 {
		n := min(max(cut(b), 1), len(b))
		chunk := bytes.Clone(b[:n])
		if got, err := m.Write(chunk); got != n || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", got, err, n)
		}
		clear(chunk) // the meter must not have kept it
		b = b[n:]
	}
	u, ok := m.Usage()
	if !ok {
		return nil
	}
	if u.Total != u.Input+u.Output {
		t.Errorf("Total %d != Input %d + Output %d", u.Total, u.Input, u.Output)
	}
	return &expectedUsage{Input: u.Input, Output: u.Output, Total: u.Total}
}

func show(e *expectedUsage) string {
	if e == nil {
		return "no usage"
	}
	return fmt.Sprintf("%+v", *e)
}

func fixtureNames(exp map[string]*expectedUsage) []string {
	names := make([]string, 0, len(exp))
	for n := range exp {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestMeterFixtures(t *testing.T) {
	exp := loadExpected(t)
	if len(exp) != 28 {
		t.Fatalf("expected.json has %d fixtures, want 28", len(exp))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	patterns := []struct {
		name string
		cut  func([]byte) int
	}{
		{"whole", func(b []byte) int { return len(b) }},
		{"byte-by-byte", func([]byte) int { return 1 }},
		{"random", func([]byte) int { return 1 + rng.IntN(64) }},
		{"split-crlf", splitAfter('\r')},
		{"split-utf8", splitInsideRune},
	}
	for _, name := range fixtureNames(exp) {
		want := exp[name]
		b := readFixture(t, name)
		for _, detect := range []string{"headers", "sniff"} {
			opts := fixtureOptions(name)
			if detect == "sniff" {
				if strings.HasSuffix(name, ".gz") {
					opts = []MeterOption{WithContentEncoding("gzip")}
				} else {
					opts = nil
				}
			}
			for _, p := range patterns {
				got := meterResult(t, b, opts, p.cut)
				if show(got) != show(want) {
					t.Errorf("%s (%s, %s): got %s, want %s", name, detect, p.name, show(got), show(want))
				}
			}
			for seed := range uint64(20) {
				r := rand.New(rand.NewPCG(seed, 99))
				got := meterResult(t, b, opts, func([]byte) int { return 1 + r.IntN(1+r.IntN(300)) })
				if show(got) != show(want) {
					t.Errorf("%s (%s, random seed %d): got %s, want %s", name, detect, seed, show(got), show(want))
				}
			}
		}
	}
}

// splitAfter cuts every chunk right after the next c, so that CRLF pairs
// are split between writes.
func splitAfter(c byte) func([]byte) int {
	return func(b []byte) int {
		if i := bytes.IndexByte(b, c); i >= 0 {
			return i + 1
		}
		return len(b)
	}
}

// splitInsideRune cuts every chunk one byte into the next multi-byte rune.
func splitInsideRune(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if n > 1 && r != utf8.RuneError {
			return i + 1
		}
		i += n
	}
	return len(b)
}
