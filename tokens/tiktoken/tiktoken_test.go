package tiktoken

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate-go/tollgate/tokens"
)

// counters are built once for the whole test binary, as a program would.
var counters = sync.OnceValues(func() (map[string]*Counter, error) {
	m := map[string]*Counter{}
	for _, name := range []string{O200kBase, Cl100kBase} {
		c, err := New(name)
		if err != nil {
			return nil, err
		}
		m[name] = c
	}
	return m, nil
})

func counter(t *testing.T, name string) *Counter {
	t.Helper()
	m, err := counters()
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

type reference struct {
	TextO200k       int64 `json:"text_o200k_tokens"`
	TextCl100k      int64 `json:"text_cl100k_tokens"`
	ExtraJSONO200k  int64 `json:"extra_json_o200k_tokens"`
	ExtraJSONCl100k int64 `json:"extra_json_cl100k_tokens"`
}

// TestCountsMatchReference counts the fixtures' text through the tokens
// package's request and payload walkers and requires the exact reference
// counts of expected_details.json.
func TestCountsMatchReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "expected_details.json"))
	if err != nil {
		t.Fatal(err)
	}
	var details map[string]struct {
		Reference *reference `json:"reference_counts"`
	}
	if err := json.Unmarshal(raw, &details); err != nil {
		t.Fatal(err)
	}
	for name, d := range details {
		if d.Reference == nil {
			continue
		}
		body, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			enc  string
			want int64
		}{
			{O200kBase, d.Reference.TextO200k + d.Reference.ExtraJSONO200k},
			{Cl100kBase, d.Reference.TextCl100k + d.Reference.ExtraJSONCl100k},
		} {
			c := counter(t, tc.enc)
			var got int64
			if strings.HasPrefix(name, "mcp_") || strings.HasPrefix(name, "a2a_") {
				got, err = tokens.PayloadTokens(body, c)
			} else {
				var r tokens.Request
				r, err = tokens.EstimateRequest("", body, c)
				got = r.Input
			}
			if err != nil || got != tc.want {
				t.Errorf("%s with %s: got %d, %v; want %d", name, tc.enc, got, err, tc.want)
			}
		}
	}
}

func TestSpecialTokensAreText(t *testing.T) {
	c := counter(t, O200kBase)
	for _, s := range []string{"<|endoftext|>", "a <|endofprompt|> b <|fim_prefix|>", "<|endoftext|><|endoftext|>"} {
		if n := c.CountTokens(s); n <= 2 {
			t.Errorf("CountTokens(%q) = %d; special tokens must be counted as text", s, n)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := counter(t, O200kBase)
	want := c.CountTokens("Token buckets refill at a steady rate.")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if got := c.CountTokens("Token buckets refill at a steady rate."); got != want {
					t.Errorf("concurrent count %d, want %d", got, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestSampleBytes(t *testing.T) {
	full := counter(t, O200kBase)
	sampled := &Counter{name: full.name, enc: full.enc, sample: 1000}
	text := strings.Repeat("Quotas reset on a rolling sixty-second window. ", 200)
	exact, approx := full.CountTokens(text), sampled.CountTokens(text)
	if d := float64(approx-exact) / float64(exact); d < -0.02 || d > 0.02 {
		t.Errorf("sampled count %d vs exact %d", approx, exact)
	}
	if got := sampled.CountTokens("短い"); got != full.CountTokens("短い") {
		t.Errorf("short text must be exact")
	}
	multi := strings.Repeat("速", 400) // 1200 bytes, cut inside a rune must back off
	if got := sampled.CountTokens(multi); got <= 0 {
		t.Errorf("CountTokens(multi-byte) = %d", got)
	}
}

func TestNewUnknownEncoding(t *testing.T) {
	if _, err := New("p99k_base"); !errors.Is(err, ErrUnknownEncoding) {
		t.Errorf("New(unknown) error = %v", err)
	}
}

func TestForModel(t *testing.T) {
	for model, want := range map[string]string{
		"gpt-4o-mini": O200kBase, "gpt-4.1": O200kBase, "gpt-5": O200kBase, "o4-mini-2025-04-16": O200kBase,
		"gpt-4-0613": Cl100kBase, "gpt-3.5-turbo": Cl100kBase, "text-embedding-3-small": Cl100kBase,
		"openai/gpt-4o": O200kBase, "claude-sonnet-4-5": O200kBase,
	} {
		if got := ForModel(model); got != want {
			t.Errorf("ForModel(%q) = %q, want %q", model, got, want)
		}
	}
}
