package limiter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

func ExampleLimiter_Check() {
	clock := func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
	l, err := limiter.New(memory.New(), []limiter.Rule{
		{Name: "per-user", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute,
			By: []dimensions.Dimension{dimensions.User}},
		{Name: "per-tenant-tokens", Algorithm: algorithms.TokenBucket, Limit: 1000, Period: time.Minute,
			Unit: limiter.Tokens, By: []dimensions.Dimension{dimensions.Tenant}},
	}, limiter.WithClock(clock))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	req := &limiter.Request{
		Facts:    dimensions.Facts{Tenant: "acme", User: "alice"},
		Estimate: limiter.Usage{InputTokens: 100, OutputTokens: 200},
	}
	for i := 1; i <= 3; i++ {
		d := l.Check(ctx, req)
		if !d.Allowed {
			fmt.Printf("%d: denied by %s, retry after %v\n", i, d.Limiting.Rule.Name, d.RetryAfter)
			continue
		}
		fmt.Printf("%d: allowed, %s has %d left\n", i, d.Limiting.Rule.Name, d.Limiting.Remaining)
		// The call used less than reserved: settling refunds the difference.
		d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 100, OutputTokens: 50})
	}
	d := l.Peek(ctx, req)
	fmt.Printf("tokens left: %d\n", d.Result(1).Remaining)
	// Output:
	// 1: allowed, per-user has 1 left
	// 2: allowed, per-user has 0 left
	// 3: denied by per-user, retry after 1m0s
	// tokens left: 700
}
