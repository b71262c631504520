// Command quickstart is the smallest tollgate program: a few limits on the
// in-process memory store (or Redis with -redis host:port), a handful of
// requests, and the decisions printed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
	redisstore "github.com/tollgate-go/tollgate/store/redis"
)

func main() {
	addr := flag.String("redis", "", "Redis host:port; empty uses the in-process memory store")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *addr); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer, redisAddr string) error {
	var s store.Store = memory.New()
	if redisAddr != "" {
		client := goredis.NewClient(&goredis.Options{Addr: redisAddr, ContextTimeoutEnabled: true, DialerRetries: 1})
		defer client.Close()
		s = redisstore.New(client, redisstore.WithKeyPrefix("quickstart:"))
	}
	defer s.Close()

	lim, err := limiter.New(s, []limiter.Rule{
		// Each user: bursts of 3, refilled at 3 per second.
		{Name: "user-rps", Algorithm: algorithms.TokenBucket, Limit: 3, Period: time.Second, By: []dimensions.Dimension{dimensions.User}},
		// Each tenant: 1,000 tokens a minute, reserved before and settled after.
		{Name: "tenant-tpm", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: time.Minute, Unit: limiter.Tokens, By: []dimensions.Dimension{dimensions.Tenant}},
	}, limiter.WithFailMode(limiter.FailDeny))
	if err != nil {
		return err
	}

	req := &limiter.Request{
		Facts:    dimensions.Facts{Tenant: "acme", User: "alice"},
		Estimate: limiter.Usage{InputTokens: 120, OutputTokens: 200}, // reserve 320 tokens
	}
	for i := 1; i <= 5; i++ {
		d := lim.Check(ctx, req)
		if d.Err != nil {
			return fmt.Errorf("store: %w", d.Err)
		}
		if !d.Allowed {
			fmt.Fprintf(w, "request %d: denied by %s, retry after %v\n", i, d.Limiting.Rule.Name, d.RetryAfter.Round(time.Millisecond))
			continue
		}
		fmt.Fprintf(w, "request %d: allowed, tightest rule %s has %d left\n", i, d.Limiting.Rule.Name, d.Limiting.Remaining)
		// The response used fewer tokens than reserved: settle refunds the rest.
		if err := d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 120, OutputTokens: 80}); err != nil {
			return err
		}
	}
	d := lim.Peek(ctx, req)
	fmt.Fprintf(w, "after settling: %s has %d of %d tokens left\n", d.Result(1).Rule.Name, d.Result(1).Remaining, d.Result(1).Limit)
	return nil
}
