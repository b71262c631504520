package algorithms_test

import (
	"fmt"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
)

const sec = 1_000_000 // µs

type step struct {
	at   int64 // µs
	cost int64
	mode algorithms.Mode
	want algorithms.Result
}

func allowed(remaining, resetAfter int64) algorithms.Result {
	return algorithms.Result{Allowed: true, Remaining: remaining, ResetAfter: resetAfter}
}

func limited(remaining, retryAfter, resetAfter int64) algorithms.Result {
	return algorithms.Result{Reason: algorithms.ReasonLimited, Remaining: remaining, RetryAfter: retryAfter, ResetAfter: resetAfter}
}

func tooBig(remaining, resetAfter int64) algorithms.Result {
	return algorithms.Result{Reason: algorithms.ReasonExceedsCapacity, Remaining: remaining, ResetAfter: resetAfter}
}

// bucketSteps are shared by TokenBucket and GCRA, which must agree.
// 10 tokens per second, burst 5: a token drains every 100ms.
var bucketSteps = []step{
	// used 0+5 = 5 ≤ 5. Empty after 5·100ms.
	{1 * sec, 5, algorithms.Normal, allowed(0, 500_000)},
	// 5+1 > 5: wait until 1 token drained, 100ms.
	{1 * sec, 1, algorithms.Normal, limited(0, 100_000, 500_000)},
	// 50ms later 0.5 drained: used 4.5, 4.5+1 > 5; 0.5 more takes 50ms;
	// Remaining ⌊5−4.5⌋ = 0; empty after 4.5·100ms.
	{1*sec + 50_000, 1, algorithms.Normal, limited(0, 50_000, 450_000)},
	// At 1.1s used is 4: 4+1 fits; used 5.
	{1*sec + 100_000, 1, algorithms.Normal, allowed(0, 500_000)},
	// 6 > burst 5 never fits.
	{1*sec + 100_000, 6, algorithms.Normal, tooBig(0, 500_000)},
	// Refund 2: used 3, 2 remaining, empty after 300ms.
	{1*sec + 100_000, -2, algorithms.Normal, allowed(2, 300_000)},
	// Forced 10: used 13, empty after 1.3s.
	{1*sec + 100_000, 10, algorithms.Force, allowed(0, 1_300_000)},
	// Peek: 13+1 > 5; 9 tokens must drain: 900ms.
	{1*sec + 100_000, 0, algorithms.Normal, limited(0, 900_000, 1_300_000)},
	// Refund far more than used: empty, never below.
	{1*sec + 100_000, -100, algorithms.Normal, allowed(5, 0)},
}

// thirdSteps: 3 tokens per second, burst 1: a token drains every
// 333333.3µs, so times are rounded up to whole µs.
var thirdSteps = []step{
	// Empty after ⌈10^6/3⌉ = 333334µs.
	{0, 1, algorithms.Normal, allowed(0, 333_334)},
	{0, 1, algorithms.Normal, limited(0, 333_334, 333_334)},
	// At 333333µs 0.999999 drained, 10^-6 token left: ⌈10^-6·10^6/3⌉ = 1µs.
	{333_333, 1, algorithms.Normal, limited(0, 1, 1)},
	// At 333334µs the bucket is empty (1.000002 drained).
	{333_334, 1, algorithms.Normal, allowed(0, 333_334)},
}

// TestHandComputed checks results that a reader can verify by hand.
func TestHandComputed(t *testing.T) {
	tests := []struct {
		name  string
		p     algorithms.Params
		steps []step
	}{
		{
			name: "fixed window 3 per 10s",
			p:    algorithms.Params{Kind: algorithms.FixedWindow, Limit: 3, Period: 10 * sec},
			steps: []step{
				// Window [20s, 30s): 2 of 3, it ends in 5s.
				{25 * sec, 2, algorithms.Normal, allowed(1, 5*sec)},
				// 2+2 > 3: wait for the next window, 4s.
				{26 * sec, 2, algorithms.Normal, limited(1, 4*sec, 4*sec)},
				// A peek asks about 1 unit: 2+1 ≤ 3.
				{26 * sec, 0, algorithms.Normal, allowed(1, 4*sec)},
				// 4 > 3 never fits.
				{26 * sec, 4, algorithms.Normal, tooBig(1, 4*sec)},
				// 1µs before the end: 3 of 3.
				{30*sec - 1, 1, algorithms.Normal, allowed(0, 1)},
				// Window [30s, 40s) starts empty.
				{30 * sec, 3, algorithms.Normal, allowed(0, 10*sec)},
				// Refunds stop at empty, which needs no reset.
				{30 * sec, -5, algorithms.Normal, allowed(3, 0)},
			},
		},
		{
			name: "fixed window with offset 4s",
			p:    algorithms.Params{Kind: algorithms.FixedWindow, Limit: 3, Period: 10 * sec, Offset: 4 * sec},
			steps: []step{
				// Windows [4s,14s), [14s,24s), [24s,34s): 25s ends in 9s.
				{25 * sec, 1, algorithms.Normal, allowed(2, 9*sec)},
				// 33.999999s is still in it: 1+3 > 3, next window in 1µs.
				{34*sec - 1, 3, algorithms.Normal, limited(2, 1, 1)},
				{34 * sec, 3, algorithms.Normal, allowed(0, 10*sec)},
			},
		},
		{
			name: "sliding window 10 per 10s",
			p:    algorithms.Params{Kind: algorithms.SlidingWindow, Limit: 10, Period: 10 * sec},
			steps: []step{
				// Window [0,10s): curr 8; it slides out by 20s.
				{5 * sec, 8, algorithms.Normal, allowed(2, 15*sec)},
				// Window [10s,20s), 2s in: prev 8 weighs ⌈8·8/10⌉ = ⌈6.4⌉ = 7;
				// 7+3 ≤ 10; curr 3 slides out by 30s: 18s.
				{12 * sec, 3, algorithms.Normal, allowed(0, 18*sec)},
				// 7+3+1 > 10. Need ⌈8·(10s−e)/10s⌉ ≤ 10−3−1 = 6, i.e.
				// 8·(10s−e) ≤ 60s, e ≥ 2.5s: 0.5s from now.
				{12 * sec, 1, algorithms.Normal, limited(0, 500_000, 18*sec)},
				// At e = 2.499999s: 8·7.500001/10 = 6.0000008, ⌈⌉ = 7, still denied.
				{12*sec + 499_999, 1, algorithms.Normal, limited(0, 1, 18*sec-499_999)},
				// At e = 2.5s: ⌈6⌉ + 3 + 1 = 10.
				{12*sec + 500_000, 1, algorithms.Normal, allowed(0, 17*sec+500_000)},
				// curr 4 + 7 > 10 never fits in this window. Next window,
				// curr 4 is prev: ⌈4·(10s−e)/10s⌉ ≤ 3 ⇔ e ≥ 2.5s, so
				// 7.5s to the window end + 2.5s = 10s.
				{12*sec + 500_000, 7, algorithms.Normal, limited(0, 10*sec, 17*sec+500_000)},
				// Window [20s,30s), 2.5s in: ⌈4·7.5/10⌉ = 3; 3+7 = 10.
				{22*sec + 500_000, 7, algorithms.Normal, allowed(0, 17*sec+500_000)},
				// A peek at 10 of 10 is denied: ⌈4·(10s−e)/10s⌉ ≤ 10−7−1 = 2
				// ⇔ e ≥ 5s, 2.5s from now.
				{22*sec + 500_000, 0, algorithms.Normal, limited(0, 2*sec+500_000, 17*sec+500_000)},
				// Refund 9: curr 7 → 0, the 2 left come off prev (4 → 2):
				// ⌈2·7.5/10⌉ = 2, 8 remaining; prev is gone at 30s.
				{22*sec + 500_000, -9, algorithms.Normal, allowed(8, 7*sec+500_000)},
			},
		},
		{name: "token bucket 10/s burst 5", p: algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: sec, Burst: 5}, steps: bucketSteps},
		{name: "gcra 10/s burst 5", p: algorithms.Params{Kind: algorithms.GCRA, Limit: 10, Period: sec, Burst: 5}, steps: bucketSteps},
		{name: "token bucket 3/s", p: algorithms.Params{Kind: algorithms.TokenBucket, Limit: 3, Period: sec, Burst: 1}, steps: thirdSteps},
		{name: "gcra 3/s", p: algorithms.Params{Kind: algorithms.GCRA, Limit: 3, Period: sec, Burst: 1}, steps: thirdSteps},
		{
			name: "concurrency 2 with a 30s lease",
			p:    algorithms.Params{Kind: algorithms.Concurrency, Limit: 2, Period: 30 * sec},
			steps: []step{
				{100 * sec, 1, algorithms.Normal, allowed(1, 30*sec)},
				// The lease counts from the last change.
				{110 * sec, 1, algorithms.Normal, allowed(0, 30*sec)},
				// Full: no RetryAfter (a holder must release); forgotten
				// 30s after 110s.
				{115 * sec, 1, algorithms.Normal, limited(0, 0, 25*sec)},
				{115 * sec, -1, algorithms.Normal, allowed(1, 30*sec)},
				// 145s−115s = 30s: the lease ran out, the key is empty.
				{145 * sec, 2, algorithms.Normal, allowed(0, 30*sec)},
				{145 * sec, 3, algorithms.Normal, tooBig(0, 30*sec)},
			},
		},
		{
			name: "limit 0",
			p:    algorithms.Params{Kind: algorithms.FixedWindow, Limit: 0, Period: sec},
			steps: []step{
				{0, 1, algorithms.Normal, tooBig(0, 0)},
				{0, 0, algorithms.Normal, tooBig(0, 0)},
				{0, -1, algorithms.Normal, allowed(0, 0)},
				{0, 1, algorithms.Force, allowed(0, 0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s algorithms.State
			for i, st := range tt.steps {
				var got algorithms.Result
				s, got = algorithms.Apply(tt.p, s, st.at, st.cost, st.mode)
				if got != st.want {
					t.Fatalf("step %d (%v): got %+v, want %+v", i, op{st.at, st.cost, st.mode}, got, st.want)
				}
			}
		})
	}
}

func ExampleApply() {
	// 10 requests per second with bursts of 5; time in µs.
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1_000_000, Burst: 5}
	var s algorithms.State // a fresh key
	now := int64(1_700_000_000_000_000)
	for _, cost := range []int64{5, 1} {
		var res algorithms.Result
		s, res = algorithms.Apply(p, s, now, cost, algorithms.Normal)
		fmt.Printf("cost %d: allowed=%v reason=%v remaining=%d retry_after=%dµs reset_after=%dµs\n",
			cost, res.Allowed, res.Reason, res.Remaining, res.RetryAfter, res.ResetAfter)
	}
	_, res := algorithms.Apply(p, s, now+100_000, 1, algorithms.Normal)
	fmt.Println("100ms later:", res.Allowed)
	_, res = algorithms.Apply(p, s, now, 6, algorithms.Normal)
	fmt.Println("cost 6:", res.Reason)
	// Output:
	// cost 5: allowed=true reason=none remaining=0 retry_after=0µs reset_after=500000µs
	// cost 1: allowed=false reason=limited remaining=0 retry_after=100000µs reset_after=500000µs
	// 100ms later: true
	// cost 6: exceeds_capacity
}
