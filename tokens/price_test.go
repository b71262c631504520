package tokens

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const priceJSON = `{
  "currency": "USD",
  "models": {
    "gpt-4o": {"input": 2.5, "cached_input": "1.25", "output": 10, "aliases": ["chatgpt-4o"]},
    "claude-sonnet-4-5": {"input": "3", "cached_input": "0.30", "output": "15"},
    "gpt-4": {"input": 30, "output": 60},
    "o4-mini": {"input": 1.1, "cached_input": 0.275, "output": 4.4}
  }
}`

func loadTestPrices(t *testing.T) *PriceTable {
	t.Helper()
	pt, err := LoadPriceTable(strings.NewReader(priceJSON))
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

func TestPriceTableLookup(t *testing.T) {
	pt := loadTestPrices(t)
	for _, tc := range []struct{ model, want string }{
		{"gpt-4o", "gpt-4o"},
		{"GPT-4o", "gpt-4o"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"gpt-4o-latest", "gpt-4o"},
		{"chatgpt-4o", "gpt-4o"},
		{"chatgpt-4o-latest", "gpt-4o"},
		{"openai/gpt-4o-2024-11-20", "gpt-4o"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"gpt-4-0613", "gpt-4"},
		{"o4-mini-2025-04-16", "o4-mini"},
		{"models/o4-mini", "o4-mini"},
		{"gpt-4o-mini", ""},
		{"gpt-5", ""},
		{"", ""},
		{"-2024-08-06", ""},
	} {
		name, _, err := pt.Lookup(tc.model)
		if tc.want == "" {
			if !errors.Is(err, ErrUnknownModel) {
				t.Errorf("Lookup(%q) = %q, %v; want ErrUnknownModel", tc.model, name, err)
			}
			continue
		}
		if err != nil || name != tc.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.model, name, err, tc.want)
		}
	}
}

func TestPriceCost(t *testing.T) {
	pt := loadTestPrices(t)
	for _, tc := range []struct {
		model string
		u     Usage
		want  int64
	}{
		// 1000 uncached * 2.5 + 0 + 500 * 10 per 1M = 0.0025 + 0.005 USD = 7500 micro
		{"gpt-4o", Usage{Input: 1000, Output: 500}, 7500},
		// openai_chat.json-like: 1254 in (1024 cached), 389 out at o4-mini prices.
		// 230*1.1 + 1024*0.275 + 389*4.4 = 253 + 281.6 + 1711.6 = 2246.2 -> 2247 micro
		{"o4-mini-2025-04-16", Usage{Input: 1254, CachedInput: 1024, Output: 389}, 2247},
		{"gpt-4", Usage{Input: 1, Output: 0}, 30},
		{"gpt-4", Usage{}, 0},
		// A missing cached_input price defaults to the input price.
		{"gpt-4", Usage{Input: 10, CachedInput: 10}, 300},
		// Hostile: negative counts count as zero, cached above input is capped.
		{"gpt-4o", Usage{Input: -5, Output: -1, CachedInput: 7}, 0},
		{"gpt-4o", Usage{Input: 2, CachedInput: 9}, 3},
	} {
		got, err := pt.Cost(tc.model, tc.u)
		if err != nil || got != tc.want {
			t.Errorf("Cost(%q, %+v) = %d, %v; want %d", tc.model, tc.u, got, err, tc.want)
		}
	}
	if _, err := pt.Cost("unknown-model", Usage{Input: 1}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Cost(unknown) error = %v, want ErrUnknownModel", err)
	}
}

func TestPriceCostNoOverflowNoDrift(t *testing.T) {
	huge := Price{Input: MaxPrice, CachedInput: MaxPrice, Output: MaxPrice}
	if got := huge.Cost(Usage{Input: math.MaxInt64, Output: math.MaxInt64}); got != math.MaxInt64 {
		t.Errorf("saturating cost = %d, want MaxInt64", got)
	}
	// MaxCount tokens at MaxPrice: 2^40 * 1e9 micro-units does not fit: saturate.
	if got := huge.Cost(Usage{Output: MaxCount}); got != math.MaxInt64 {
		t.Errorf("cost = %d, want MaxInt64", got)
	}
	// Products above 2^64 that fit after the division stay exact.
	if got, want := (Price{Output: 1_000_000_000_000}).Cost(Usage{Output: MaxCount}), MaxCount*1_000_000; got != want {
		t.Errorf("cost = %d, want %d", got, want)
	}
	// One token at 0.000001 per 1M costs 1e-12, which rounds up to 1 micro-unit;
	// a million such calls summed stay exact in integers.
	tiny := Price{Output: 1}
	var sum int64
	for range 1_000_000 / 1000 {
		sum += tiny.Cost(Usage{Output: 1_000_000})
	}
	if sum != 1000 {
		t.Errorf("sum of exact costs = %d, want 1000", sum)
	}
	if got := (Price{Input: 3}).Cost(Usage{Input: 333_333}); got != 1 {
		t.Errorf("rounding up: got %d, want 1", got)
	}
}

func TestLoadPriceTableErrors(t *testing.T) {
	for _, cfg := range []string{
		`{"models":{"m":{"input":-1,"output":1}}}`,
		`{"models":{"m":{"input":"1.0000001","output":1}}}`,
		`{"models":{"m":{"input":1e3,"output":1}}}`,
		`{"models":{"m":{"input":"abc","output":1}}}`,
		`{"models":{"m":{"output":1}}}`,
		`{"models":{"m":{"input":99999999999,"output":1}}}`,
	} {
		if _, err := LoadPriceTable(strings.NewReader(cfg)); !errors.Is(err, ErrInvalidPrice) {
			t.Errorf("LoadPriceTable(%s) error = %v, want ErrInvalidPrice", cfg, err)
		}
	}
	if _, err := LoadPriceTable(strings.NewReader(`{"modles":{}}`)); err == nil {
		t.Error("LoadPriceTable accepted an unknown key")
	}
	if _, err := NewPriceTable("USD", nil, map[string]string{"a": "b"}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("alias to a missing model: error = %v, want ErrUnknownModel", err)
	}
	pt := loadTestPrices(t)
	if _, p, _ := pt.Lookup("o4-mini"); p != (Price{Input: 1_100_000, CachedInput: 275_000, Output: 4_400_000}) {
		t.Errorf("o4-mini price = %+v", p)
	}
	if pt.Currency() != "USD" {
		t.Errorf("Currency() = %q", pt.Currency())
	}
}
