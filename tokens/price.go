package tokens

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
)

// MicrosPerUnit is the number of micro-units in one unit of currency.
const MicrosPerUnit = 1_000_000

// MaxPrice is the largest accepted price, in micro-units per 1M tokens
// (one billion units of currency).
const MaxPrice int64 = 1_000_000_000 * MicrosPerUnit

// Price is the price of one model, in integer micro-units of the table's
// currency (1 USD = 1,000,000 micro-units) per 1M tokens. The zero value
// prices everything at 0.
type Price struct {
	Input       int64 // per 1M uncached input tokens
	CachedInput int64 // per 1M input tokens read from a prompt cache
	Output      int64 // per 1M output tokens, reasoning included
}

// Cost returns the cost of u in micro-units, rounded up to a whole
// micro-unit. Cached input is priced at CachedInput, the rest of Input at
// Input. Negative counts or prices count as 0; the result saturates at
// math.MaxInt64 instead of overflowing. The arithmetic is exact (128-bit),
// so there is no float drift.
func (p Price) Cost(u Usage) int64 {
	in := max(u.Input, 0)
	cached := min(max(u.CachedInput, 0), in)
	var hi, lo uint64
	add := func(tokens, price int64) {
		h, l := bits.Mul64(uint64(tokens), uint64(max(price, 0)))
		var carry uint64
		lo, carry = bits.Add64(lo, l, 0)
		hi += h + carry
	}
	add(in-cached, p.Input)
	add(cached, p.CachedInput)
	add(max(u.Output, 0), p.Output)
	// Round up: add 999,999 before dividing.
	var carry uint64
	lo, carry = bits.Add64(lo, MicrosPerUnit-1, 0)
	hi += carry
	if hi >= MicrosPerUnit {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, MicrosPerUnit)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// PriceTable maps model names to prices. Lookups resolve aliases, provider
// prefixes ("openai/gpt-4o") and date or version suffixes
// ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "gpt-4-0613",
// "gpt-4o-latest"). Names compare case-insensitively.
//
// A PriceTable is immutable after construction and safe for concurrent use.
type PriceTable struct {
	currency string
	prices   map[string]Price
	aliases  map[string]string
}

// NewPriceTable returns a table of prices (by model name) in currency
// (for example "USD"). aliases maps other names to model names of prices.
// It returns ErrInvalidPrice for a negative price or one above MaxPrice,
// and an error for an alias whose target is not in prices.
func NewPriceTable(currency string, prices map[string]Price, aliases map[string]string) (*PriceTable, error) {
	t := &PriceTable{currency: currency, prices: make(map[string]Price, len(prices)), aliases: make(map[string]string, len(aliases))}
	for name, p := range prices {
		for _, v := range []int64{p.Input, p.CachedInput, p.Output} {
			if v < 0 || v > MaxPrice {
				return nil, fmt.Errorf("%w: model %q: %d micro-units", ErrInvalidPrice, name, v)
			}
		}
		t.prices[strings.ToLower(name)] = p
	}
	for alias, target := range aliases {
		target = strings.ToLower(target)
		if _, ok := t.prices[target]; !ok {
			return nil, fmt.Errorf("tokens: alias %q: %w %q", alias, ErrUnknownModel, target)
		}
		t.aliases[strings.ToLower(alias)] = target
	}
	return t, nil
}

// Currency returns the currency the prices are in.
func (t *PriceTable) Currency() string { return t.currency }

// Lookup resolves model to a listed model and returns that model's name and
// price, or ErrUnknownModel.
func (t *PriceTable) Lookup(model string) (string, Price, error) {
	name := strings.ToLower(strings.TrimSpace(model))
	for range 2 {
		for try := name; try != ""; {
			if p, ok := t.prices[try]; ok {
				return try, p, nil
			}
			if target, ok := t.aliases[try]; ok {
				return target, t.prices[target], nil
			}
			next := stripVersion(try)
			if next == try {
				break
			}
			try = next
		}
		// Second pass without a provider prefix ("openai/", "models/").
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	return "", Price{}, fmt.Errorf("%w %q", ErrUnknownModel, model)
}

// Cost returns the cost of u under model's price, in micro-units of the
// table's currency, or ErrUnknownModel; an unknown model is never priced 0.
func (t *PriceTable) Cost(model string, u Usage) (int64, error) {
	_, p, err := t.Lookup(model)
	if err != nil {
		return 0, err
	}
	return p.Cost(u), nil
}

// stripVersion removes one trailing date or version suffix: -YYYY-MM-DD,
// -YYYYMMDD, @YYYYMMDD, -MMDD, -latest. It returns name unchanged when
// there is none.
func stripVersion(name string) string {
	if s, ok := strings.CutSuffix(name, "-latest"); ok {
		return s
	}
	if n := len(name); n > 11 && name[n-11] == '-' && name[n-6] == '-' && name[n-3] == '-' &&
		allDigits(name[n-10:n-6]) && allDigits(name[n-5:n-3]) && allDigits(name[n-2:]) {
		return name[:n-11]
	}
	if n := len(name); n > 9 && (name[n-9] == '-' || name[n-9] == '@') && allDigits(name[n-8:]) {
		return name[:n-9]
	}
	if n := len(name); n > 5 && name[n-5] == '-' && allDigits(name[n-4:]) {
		return name[:n-5]
	}
	return name
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// LoadPriceTable reads a price table from JSON:
//
//	{
//	  "currency": "USD",
//	  "models": {
//	    "gpt-4o": {"input": 2.5, "cached_input": 1.25, "output": 10, "aliases": ["chatgpt-4o"]},
//	    "claude-sonnet-4-5": {"input": "3", "cached_input": "0.30", "output": "15"}
//	  }
//	}
//
// Prices are in units of currency per 1M tokens, written as JSON numbers
// or decimal strings with at most six decimals; they are converted to
// micro-units exactly, without floating point. A missing cached_input
// means the input price.
func LoadPriceTable(r io.Reader) (*PriceTable, error) {
	var cfg struct {
		Currency string `json:"currency"`
		Models   map[string]struct {
			Input       json.RawMessage `json:"input"`
			CachedInput json.RawMessage `json:"cached_input"`
			Output      json.RawMessage `json:"output"`
			Aliases     []string        `json:"aliases"`
		} `json:"models"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("tokens: price table: %w", err)
	}
	prices := make(map[string]Price, len(cfg.Models))
	aliases := make(map[string]string)
	for name, m := range cfg.Models {
		var p Price
		var err error
		if p.Input, err = parseMicros(m.Input); err != nil {
			return nil, fmt.Errorf("%w: models.%s.input: %v", ErrInvalidPrice, name, err)
		}
		if p.Output, err = parseMicros(m.Output); err != nil {
			return nil, fmt.Errorf("%w: models.%s.output: %v", ErrInvalidPrice, name, err)
		}
		p.CachedInput = p.Input
		if !isNull(m.CachedInput) {
			if p.CachedInput, err = parseMicros(m.CachedInput); err != nil {
				return nil, fmt.Errorf("%w: models.%s.cached_input: %v", ErrInvalidPrice, name, err)
			}
		}
		prices[name] = p
		for _, a := range m.Aliases {
			aliases[a] = name
		}
	}
	return NewPriceTable(cfg.Currency, prices, aliases)
}

// parseMicros converts a decimal amount (a JSON number or string, at most
// six decimals, not negative) to micro-units exactly.
func parseMicros(raw json.RawMessage) (int64, error) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || string(s) == "null" {
		return 0, fmt.Errorf("missing")
	}
	if s[0] == '"' {
		var str string
		if err := json.Unmarshal(s, &str); err != nil {
			return 0, err
		}
		s = []byte(strings.TrimSpace(str))
	}
	whole, frac, _ := bytes.Cut(s, []byte("."))
	if !allDigits(string(whole)) || (len(frac) > 0 && !allDigits(string(frac))) {
		return 0, fmt.Errorf("%q is not a non-negative decimal", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("%q has more than six decimals", s)
	}
	if len(whole) > 10 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	var v int64
	for _, c := range whole {
		v = v*10 + int64(c-'0')
	}
	v *= MicrosPerUnit
	scale := int64(100_000)
	for _, c := range frac {
		v += int64(c-'0') * scale
		scale /= 10
	}
	if v > MaxPrice {
		return 0, fmt.Errorf("%q is above the maximum", s)
	}
	return v, nil
}
