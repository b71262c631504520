package limiter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
	"github.com/tollgate-go/tollgate/tokens"
)

// A daily budget of 1 USD per tenant, priced from a price table, with
// alerts at 80% and 100% (with WithThresholdOnDenial: the first request
// that no longer fits) and a
// downshift to a cheaper model once gpt-4o no longer fits.
func ExampleWithDownshift() {
	ctx := context.Background()
	prices, _ := tokens.NewPriceTable("USD", map[string]tokens.Price{
		"gpt-4o":      {Input: 2_500_000, Output: 10_000_000}, // micro-USD per 1M tokens
		"gpt-4o-mini": {Input: 150_000, Output: 600_000},
	}, nil)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	budget := limiter.Rule{
		Name: "team-daily", Algorithm: algorithms.FixedWindow, Limit: 1_000_000, Calendar: limiter.Day,
		Unit: limiter.Cost, By: []dimensions.Dimension{dimensions.Tenant},
	}
	l, err := limiter.New(memory.New(), []limiter.Rule{budget},
		limiter.WithClock(func() time.Time { return now }),
		limiter.WithThresholdHook(func(_ context.Context, e limiter.ThresholdEvent) {
			fmt.Printf("alert: %s at %.0f%%: %d of %d micro-USD\n", e.Rule.Name, e.Threshold*100, e.Used, e.Limit)
		}),
		limiter.WithThresholdOnDenial(), // 100% when a request no longer fits
		limiter.WithDownshift(func(_ context.Context, req *limiter.Request, _ limiter.Decision) *limiter.Request {
			if req.Model != "gpt-4o" {
				return nil
			}
			alt := *req
			alt.Model = "gpt-4o-mini"
			alt.Estimate, _ = alt.Estimate.Priced(prices, alt.Model)
			return &alt
		}))
	if err != nil {
		panic(err)
	}
	for i := range 5 {
		req := &limiter.Request{Facts: dimensions.Facts{Tenant: "acme", Model: "gpt-4o"}}
		req.Estimate, _ = limiter.Usage{InputTokens: 40_000, OutputTokens: 20_000}.Priced(prices, req.Model)
		d := l.Check(ctx, req)
		if d.Downshifted != nil {
			req = d.Downshifted // forward this one
		}
		fmt.Printf("request %d: allowed=%v model=%s\n", i+1, d.Allowed, req.Model)
		if d.Reservation != nil {
			_ = d.Reservation.Settle(ctx, req.Estimate) // as if the usage was the estimate
		}
	}
	// Output:
	// request 1: allowed=true model=gpt-4o
	// request 2: allowed=true model=gpt-4o
	// alert: team-daily at 80%: 900000 of 1000000 micro-USD
	// request 3: allowed=true model=gpt-4o
	// alert: team-daily at 100%: 900000 of 1000000 micro-USD
	// request 4: allowed=true model=gpt-4o-mini
	// request 5: allowed=true model=gpt-4o-mini
}
