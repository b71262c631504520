package limiter_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

// The rule sets of the benchmarks here. The budgets of issue 2 (Limiter.Check
// against x/time/rate on a hot key and on 100k keys) are measured, with their
// baselines, in one place: package benchmarks (`go run ./benchmarks/report`).

var (
	oneRule = []limiter.Rule{{Name: "per-user", Algorithm: algorithms.TokenBucket, Limit: 1 << 50, Period: time.Second, By: []dimensions.Dimension{dimensions.User}}}
	by      = func(d ...dimensions.Dimension) []dimensions.Dimension { return d }
	four    = []limiter.Rule{
		{Name: "user-bucket", Algorithm: algorithms.TokenBucket, Limit: 1 << 50, Period: time.Second, By: by(dimensions.User)},
		{Name: "user-window", Algorithm: algorithms.FixedWindow, Limit: 1 << 50, Period: time.Minute, By: by(dimensions.User)},
		{Name: "tenant-gcra", Algorithm: algorithms.GCRA, Limit: 1 << 50, Period: time.Second, By: by(dimensions.Tenant)},
		{Name: "tenant-user", Algorithm: algorithms.SlidingWindow, Limit: 1 << 50, Period: time.Minute, By: by(dimensions.Tenant, dimensions.User)},
	}
)

func check(b *testing.B, l *limiter.Limiter, req *limiter.Request) {
	if d := l.Check(context.Background(), req); !d.Allowed {
		b.Fatalf("denied: %+v", d.Limiting)
	}
}
