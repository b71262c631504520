package ledger_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

func Example() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC) }
	s := memory.New()
	lg, _ := ledger.New(s, ledger.WithGroups(ledger.Group{dimensions.Tenant}, ledger.Group{dimensions.Tenant, dimensions.Model}), ledger.WithClock(now))
	lim, _ := limiter.New(s, []limiter.Rule{{
		Name: "per-tenant", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute,
		By: []dimensions.Dimension{dimensions.Tenant},
	}}, limiter.WithRecorder(lg), limiter.WithClock(now))

	req := &limiter.Request{Facts: dimensions.Facts{Tenant: "acme", Model: "gpt-4o"}}
	for range 3 {
		d := lim.Check(ctx, req)
		if d.Allowed {
			// After the response: the measured usage, in the settle's store call.
			d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 100, OutputTokens: 20, Cost: 450})
		}
	}
	u, _ := lg.Usage(ctx, now(), ledger.Subject{Group: ledger.Group{dimensions.Tenant}, Facts: req.Facts})
	fmt.Printf("%+v\n", u)
	lg.Export(ctx, os.Stdout, ledger.CSV, now())
	// Output:
	// {Requests:2 Denials:1 InputTokens:200 OutputTokens:40 Cost:900}
	// period,group,tenant,model,requests,denials,input_tokens,output_tokens,cost
	// 2026-11-22T00:00:00Z,tenant,acme,,2,1,200,40,900
	// 2026-11-22T00:00:00Z,tenant+model,acme,gpt-4o,2,1,200,40,900
}
