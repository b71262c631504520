package limiter

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
)

func TestConcurrentChecksAdmitExactlyTheLimit(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{
		{Name: "fixed", Algorithm: algorithms.FixedWindow, Limit: 300, Period: time.Hour, By: byUser()},
		{Name: "bucket", Algorithm: algorithms.TokenBucket, Limit: 200, Period: time.Hour, By: byUser()},
	})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := user("hot")
			for i := 0; i < 50; i++ {
				if d := l.Check(ctx, req); d.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != 200 {
		t.Fatalf("admitted %d of 800, want exactly 200 (the tighter rule)", got)
	}
	d := l.Peek(ctx, user("hot"))
	if got := d.Result(0).Remaining; got != 100 {
		t.Fatalf("fixed-window remaining = %d, want 100: only admitted requests charge", got)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; CI runs this test without it")
	}
	rules := []Rule{
		{Name: "a", Algorithm: algorithms.FixedWindow, Limit: 1 << 40, Period: time.Hour, By: byUser()},
		{Name: "b", Algorithm: algorithms.TokenBucket, Limit: 1 << 40, Period: time.Hour, By: []dimensions.Dimension{dimensions.Tenant, dimensions.User}},
		{Name: "c", Algorithm: algorithms.SlidingWindow, Limit: 1 << 40, Period: time.Hour, When: Equal(dimensions.Model, "gpt-4o")},
		{Name: "d", Algorithm: algorithms.GCRA, Limit: 1 << 40, Period: time.Hour},
	}
	l, _, _ := newTestLimiter(t, rules)
	req := &Request{Facts: dimensions.Facts{User: "u", Tenant: "t", Model: "gpt-4o"}}
	l.Check(ctx, req) // creates the keys
	if n := testing.AllocsPerRun(200, func() {
		if d := l.Check(ctx, req); !d.Allowed || d.Len() != 4 {
			t.Fatalf("allowed=%v len=%d", d.Allowed, d.Len())
		}
	}); n != 0 {
		t.Fatalf("Check with 4 rules allocated %v times per call", n)
	}
}
