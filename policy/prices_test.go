package policy

import (
	"testing"

	"github.com/tollgate-go/tollgate/tokens"
)

func TestPrices(t *testing.T) {
	p := mustLoad(t, `version: 1
prices:
  currency: USD
  models:
    gpt-4o: {input: 2.5, cached_input: 1.25, output: 10, aliases: [chatgpt-4o]}
    claude-sonnet-4-5: {input: "3", output: "15.000001"}
rules:
  - {name: team-budget, limit: 100000000, calendar: month, unit: cost, by: [tenant]}
`)
	table := p.Prices()
	if table == nil || table.Currency() != "USD" {
		t.Fatalf("Prices() = %v", table)
	}
	// 1M input at 2.5 + 1M output at 10 = 12.5 USD.
	if c, err := table.Cost("chatgpt-4o", tokens.Usage{Input: 1e6, Output: 1e6}); err != nil || c != 12_500_000 {
		t.Errorf("Cost = %d, %v; want 12500000", c, err)
	}
	if _, pr, err := table.Lookup("claude-sonnet-4-5-20250929"); err != nil || pr.Output != 15_000_001 || pr.CachedInput != 3_000_000 {
		t.Errorf("Lookup = %+v, %v", pr, err)
	}
	if mustLoad(t, "version: 1\n").Prices() != nil {
		t.Error("a document without prices has a price table")
	}
}

func TestPriceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, path, msg string
	}{
		{"negative", "version: 1\nprices: {currency: USD, models: {m: {input: -1, output: 1}}}\n", "/prices/models/m/input", "not a non-negative decimal"},
		{"seven decimals", "version: 1\nprices: {currency: USD, models: {m: {input: '0.0000001', output: 1}}}\n", "/prices/models/m/input", "at most six decimals"},
		{"tiny float", "version: 1\nprices: {currency: USD, models: {m: {input: 0.0000001, output: 1}}}\n", "/prices/models/m/input", "at most six decimals"},
		{"missing output", "version: 1\nprices: {currency: USD, models: {m: {input: 1}}}\n", "/prices/models/m", `missing required field "output"`},
		{"unknown field", "version: 1\nprices: {currency: USD, models: {m: {input: 1, outptu: 1, output: 1}}}\n", "/prices/models/m/outptu", "unknown field"},
		{"alias clash", "version: 1\nprices: {currency: USD, models: {a: {input: 1, output: 1}, b: {input: 1, output: 1, aliases: [A]}}}\n", "/prices/models/b/aliases/0", "already names a price"},
		{"no currency", "version: 1\nprices: {models: {}}\n", "/prices", `missing required field "currency"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.doc))
			for _, e := range Errors(err) {
				if e.Path == tc.path && contains(e.Message, tc.msg) {
					return
				}
			}
			t.Errorf("got %v\nwant an error at %q containing %q", err, tc.path, tc.msg)
		})
	}
}
