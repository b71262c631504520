package limiter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/tokens"
)

func testPrices(t *testing.T) *tokens.PriceTable {
	t.Helper()
	pt, err := tokens.NewPriceTable("USD", map[string]tokens.Price{
		"gpt-4o":      {Input: 2_500_000, CachedInput: 1_250_000, Output: 10_000_000},
		"gpt-4o-mini": {Input: 150_000, Output: 600_000},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// dailyBudget is 1 USD a day per tenant.
func dailyBudget() Rule {
	return Rule{Name: "team-daily", Algorithm: algorithms.FixedWindow, Limit: 1_000_000, Calendar: Day,
		Unit: Cost, By: []dimensions.Dimension{dimensions.Tenant}}
}

// llmRequest is a request of tenant acme for model, its estimate priced.
func llmRequest(t *testing.T, pt *tokens.PriceTable, model string, in, maxOut int64) *Request {
	t.Helper()
	est, err := Usage{InputTokens: in, OutputTokens: maxOut}.Priced(pt, model)
	if err != nil {
		t.Fatal(err)
	}
	return &Request{Facts: dimensions.Facts{Tenant: "acme", Model: model}, Estimate: est}
}

func TestBudgetAlertsAt80And100AndThrottlesPast100(t *testing.T) {
	pt := testPrices(t)
	var ev events
	l, _, clk := newTestLimiter(t, []Rule{dailyBudget()}, WithThresholdHook(ev.hook))
	// Each request reserves 0.25 USD (20k in, 20k max out) and settles to
	// 0.15 USD (10k out).
	served := 0
	for {
		req := llmRequest(t, pt, "gpt-4o", 20_000, 20_000)
		if req.Estimate.Cost != 250_000 {
			t.Fatalf("estimate %d micro-USD, want 250000", req.Estimate.Cost)
		}
		d := l.Check(ctx, req)
		if !d.Allowed {
			if d.Limiting.Rule.Name != "team-daily" || d.Limiting.Reason != algorithms.ReasonLimited {
				t.Fatalf("denied by %+v", d.Limiting)
			}
			if want := 14 * time.Hour; d.RetryAfter != want { // the fake clock is at 10:00 UTC
				t.Errorf("retry after %v, want %v (midnight)", d.RetryAfter, want)
			}
			break
		}
		served++
		actual, err := Usage{InputTokens: 20_000, OutputTokens: 10_000}.Priced(pt, "gpt-4o")
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Reservation.Settle(ctx, actual); err != nil {
			t.Fatal(err)
		}
		if served > 10 {
			t.Fatal("the budget never throttled")
		}
	}
	// Settled 150k each: the 5th check crosses 80% (600k -> 850k), the
	// 6th fits exactly (750k -> 1000k), the 7th (900k + 250k) does not.
	if served != 6 {
		t.Errorf("%d requests served, want 6", served)
	}
	got := ev.thresholds()
	if len(got) != 2 || got[0] != 0.8 || got[1] != 1 {
		t.Fatalf("alerts %v, want 0.8 then 1", got)
	}
	if e := ev.list[0]; e.Used != 850_000 || e.Limit != 1_000_000 || e.Request.Tenant != "acme" {
		t.Errorf("80%% alert: %+v", e)
	}
	// A cheap request still fits in the 100k left.
	if d := l.Check(ctx, llmRequest(t, pt, "gpt-4o-mini", 20_000, 20_000)); !d.Allowed {
		t.Errorf("a 15k request with 100k left was denied: %+v", d.Limiting)
	}
	clk.Advance(14 * time.Hour) // midnight: a new budget window
	if d := l.Check(ctx, llmRequest(t, pt, "gpt-4o", 20_000, 20_000)); !d.Allowed {
		t.Errorf("next day: denied %+v", d.Limiting)
	}
}

func TestDownshiftRewritesARequestTheBudgetDenies(t *testing.T) {
	pt := testPrices(t)
	var calls int
	cheaper := func(_ context.Context, req *Request, denied Decision) *Request {
		calls++
		if denied.Allowed || denied.Limiting.Rule.Unit != Cost {
			t.Errorf("hook got %+v, want a budget denial", denied.Limiting)
		}
		if req.Model != "gpt-4o" {
			return nil
		}
		alt := *req
		alt.Model = "gpt-4o-mini"
		alt.Estimate, _ = Usage{InputTokens: req.Estimate.InputTokens, OutputTokens: req.Estimate.OutputTokens}.Priced(pt, alt.Model)
		return &alt
	}
	rules := []Rule{dailyBudget(), {Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 3, Period: time.Minute, By: []dimensions.Dimension{dimensions.Tenant}}}
	l, _, _ := newTestLimiter(t, rules, WithDownshift(cheaper))

	spend := &Request{Facts: dimensions.Facts{Tenant: "acme"}, Estimate: Usage{Cost: 900_000}}
	if d := l.Check(ctx, spend); !d.Allowed || d.Downshifted != nil {
		t.Fatalf("spending 0.9 USD: %+v", d)
	}
	if calls != 0 {
		t.Fatalf("the hook ran on an allowed request")
	}
	req := llmRequest(t, pt, "gpt-4o", 20_000, 20_000) // 250k: over the 100k left
	d := l.Check(ctx, req)
	if !d.Allowed || d.Downshifted == nil || d.Downshifted.Model != "gpt-4o-mini" {
		t.Fatalf("allowed=%v downshifted=%+v, want allowed on gpt-4o-mini", d.Allowed, d.Downshifted)
	}
	if req.Model != "gpt-4o" || req.Estimate.Cost != 250_000 {
		t.Errorf("the original request changed: %+v", req)
	}
	if got, _ := d.Reservation.Reserved("team-daily"); got != 15_000 {
		t.Errorf("reserved %d, want the cheaper model's 15000", got)
	}
	if calls != 1 {
		t.Errorf("hook called %d times, want 1", calls)
	}

	// The rewrite does not fit either: the original denial stands.
	big := llmRequest(t, pt, "gpt-4o", 2_000_000, 2_000_000)
	if d := l.Check(ctx, big); d.Allowed || d.Downshifted != nil || d.Limiting.Rule.Name != "team-daily" {
		t.Errorf("too big for both models: allowed=%v downshifted=%v limiting=%s", d.Allowed, d.Downshifted, d.Limiting.Rule.Name)
	}
	// The hook declines: the denial stands.
	if d := l.Check(ctx, llmRequest(t, pt, "gpt-4o-mini", 2_000_000, 2_000_000)); d.Allowed || d.Downshifted != nil {
		t.Errorf("declined rewrite: allowed=%v downshifted=%v", d.Allowed, d.Downshifted)
	}
	// A denial by a rule that is not a budget never reaches the hook.
	calls = 0
	l.Check(ctx, llmRequest(t, pt, "gpt-4o-mini", 10, 10)) // 4th request this minute
	l.Check(ctx, llmRequest(t, pt, "gpt-4o", 10, 10))
	if calls != 0 {
		t.Errorf("hook called %d times on request-rate denials", calls)
	}
}

func TestPricedAndPriceFunc(t *testing.T) {
	pt := testPrices(t)
	u, err := Usage{InputTokens: 1_000_000, OutputTokens: 500_000}.Priced(pt, "openai/gpt-4o-2024-08-06")
	if err != nil || u.Cost != 7_500_000 || u.InputTokens != 1_000_000 {
		t.Errorf("Priced: %+v, %v; want cost 7500000", u, err)
	}
	if _, err := (Usage{InputTokens: 1}).Priced(pt, "mystery"); !errors.Is(err, tokens.ErrUnknownModel) {
		t.Errorf("unknown model: %v, want ErrUnknownModel", err)
	}
	price := PriceFunc(pt, tokens.Price{Input: 100_000_000, Output: 100_000_000})
	if got := price("gpt-4o-mini", Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}); got != 750_000 {
		t.Errorf("PriceFunc gpt-4o-mini: %d, want 750000", got)
	}
	if got := price("mystery", Usage{InputTokens: 10}); got != 1_000 {
		t.Errorf("PriceFunc unknown model: %d, want the fallback's 1000", got)
	}
}
