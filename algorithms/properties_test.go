package algorithms_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
)

// equivalent reports how states a and b differ when probed with the same
// random operations from now on (time only moving forward), or "" when
// every probe gets the same results.
func equivalent(p algorithms.Params, a, b algorithms.State, now int64, r *rand.Rand) string {
	for range 3 {
		sa, sb, t := a, b, now
		for i := range 8 {
			if i > 0 {
				t = min(t+randStep(r, p), horizon)
			}
			cost, mode := randCost(r, p)
			if mode == algorithms.Force {
				cost = min(cost, 5)
			}
			var ra, rb algorithms.Result
			sa, ra = algorithms.Apply(p, sa, t, cost, mode)
			sb, rb = algorithms.Apply(p, sb, t, cost, mode)
			if ra != rb {
				return fmt.Sprintf("probe %v: %+v from %v, %+v from %v", op{t, cost, mode}, ra, a, rb, b)
			}
		}
	}
	return ""
}

// checkStep checks the documented properties of one Apply: p and before
// are its inputs, after and res its outputs.
func checkStep(t *testing.T, p algorithms.Params, before algorithms.State, o op, after algorithms.State, res algorithms.Result, r *rand.Rand) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%+v, state %v, %v -> %v %+v: "+format, append([]any{p, before, o, after, res}, args...)...)
	}
	checkInvariants(t, p, before, o, after, res)

	// RetryAfter is exact: one µs earlier the same cost is still denied,
	// at now+RetryAfter it is admitted.
	if res.Reason == algorithms.ReasonLimited && p.Kind != algorithms.Concurrency {
		r0 := res.RetryAfter
		switch {
		case r0 <= 0:
			fail("limited without a RetryAfter")
		case r0 < horizon-o.now:
			if _, early := algorithms.Apply(p, before, o.now+r0-1, o.cost, o.mode); early.Allowed {
				fail("already admitted at now+RetryAfter-1: %+v", early)
			}
			if _, on := algorithms.Apply(p, before, o.now+r0, o.cost, o.mode); !on.Allowed {
				fail("still denied at now+RetryAfter: %+v", on)
			}
		}
	}

	// A peek changes nothing.
	if r.IntN(4) == 0 {
		ps, _ := algorithms.Apply(p, before, o.now, 0, algorithms.Normal)
		if d := equivalent(p, before, ps, o.now, r); d != "" {
			fail("a peek changed the state: %s", d)
		}
	}

	// The state and the result agree: a peek right after reports the same
	// Remaining and ResetAfter.
	if res.Allowed && p.Limit > 0 {
		_, pr := algorithms.Apply(p, after, o.now, 0, algorithms.Normal)
		if pr.Remaining != res.Remaining || pr.ResetAfter != res.ResetAfter {
			fail("a peek right after reports %+v", pr)
		}
	}

	// At now+ResetAfter the key is as good as fresh; with ResetAfter 0 it
	// already is.
	if ra := res.ResetAfter; ra < horizon-o.now && r.IntN(2) == 0 {
		if d := equivalent(p, after, algorithms.State{}, o.now+ra, r); d != "" {
			fail("not fresh at now+ResetAfter: %s", d)
		}
	}
}

// TestRefundNeverGoesBelowEmpty: refunds on an empty key keep it fresh;
// refunding more than was charged leaves a fresh key.
func TestRefundNeverGoesBelowEmpty(t *testing.T) {
	r := newRand(t)
	for _, kind := range allKinds {
		for range 200 {
			p := randParams(r, kind)
			now := randStart(r)
			// The zero State is fresh; a refund to it keeps it so.
			s, res := algorithms.Apply(p, algorithms.State{}, now, -pick[int64](r, 1, 7, math.MaxInt64), algorithms.Normal)
			if s != (algorithms.State{}) || res != (algorithms.Result{Allowed: true, Remaining: p.Capacity()}) {
				t.Fatalf("%+v: refund on a fresh key: got %v %+v, want the zero State and %d remaining", p, s, res, p.Capacity())
			}
			// Charge c (forced so it always lands), give back more than c.
			c := r.Int64N(max(1, min(p.Capacity(), 1000))) + 1
			s, _ = algorithms.Apply(p, s, now, c, algorithms.Force)
			now += r.Int64N(p.Period)
			s, _ = algorithms.Apply(p, s, now, -(c + r.Int64N(3)), algorithms.Normal)
			if d := equivalent(p, s, algorithms.State{}, now, r); d != "" {
				t.Fatalf("%+v: after charging %d and refunding more, not fresh: %s", p, c, d)
			}
		}
	}
}

// TestForceChargesPastTheLimit: a forced charge beyond the capacity is
// admitted and the next normal call (and a peek) is denied.
func TestForceChargesPastTheLimit(t *testing.T) {
	r := newRand(t)
	for _, kind := range allKinds {
		for range 200 {
			p := randParams(r, kind)
			if p.Limit == 0 {
				continue
			}
			now := randStart(r)
			c := pick(r, p.Capacity()+1, p.Capacity()+r.Int64N(100)+1, math.MaxInt64)
			s, res := algorithms.Apply(p, algorithms.State{}, now, c, algorithms.Force)
			if !res.Allowed || res.Remaining != 0 {
				t.Fatalf("%+v: Force %d on a fresh key: got %+v, want allowed with 0 remaining", p, c, res)
			}
			for _, cost := range []int64{1, 0} {
				if _, res := algorithms.Apply(p, s, now, cost, algorithms.Normal); res.Allowed || res.Reason != algorithms.ReasonLimited {
					t.Fatalf("%+v: cost %d right after Force %d (state %v): got %+v, want limited", p, cost, c, s, res)
				}
			}
		}
	}
}

// TestCostAboveCapacityNeverPasses: whatever the state and time, a cost
// above the capacity is exceeds_capacity with RetryAfter 0 and no change.
func TestCostAboveCapacityNeverPasses(t *testing.T) {
	r := newRand(t)
	for _, kind := range allKinds {
		for range 200 {
			p := randParams(r, kind)
			var s algorithms.State
			now := randStart(r)
			for range 20 {
				now += randStep(r, p)
				cost, mode := randCost(r, p)
				s, _ = algorithms.Apply(p, s, now, min(cost, 3), mode)
				big := pick(r, p.Capacity()+1, p.Capacity()+r.Int64N(1000)+1, algorithms.MaxLimit+1, math.MaxInt64)
				if big > algorithms.MaxLimit && p.Capacity() == algorithms.MaxLimit {
					continue // clamped to MaxLimit, which fits
				}
				s2, res := algorithms.Apply(p, s, now, big, algorithms.Normal)
				if res.Allowed || res.Reason != algorithms.ReasonExceedsCapacity || res.RetryAfter != 0 || s2 != s {
					t.Fatalf("%+v state %v: cost %d at %d: got %v %+v, want exceeds_capacity, RetryAfter 0, state unchanged", p, s, big, now, s2, res)
				}
			}
		}
	}
}

// TestLimitZeroAdmitsNothing: Limit 0 admits nothing and stores nothing.
func TestLimitZeroAdmitsNothing(t *testing.T) {
	r := newRand(t)
	for _, kind := range allKinds {
		p := algorithms.Params{Kind: kind, Limit: 0, Period: 1_000_000, Burst: pick[int64](r, 0, 5)}
		var s algorithms.State
		now := randStart(r)
		for range 500 {
			now += randStep(r, p)
			cost, mode := randCost(r, p)
			var res algorithms.Result
			s, res = algorithms.Apply(p, s, now, cost, mode)
			if s != (algorithms.State{}) {
				t.Fatalf("%v: %d: stored %v", kind, cost, s)
			}
			forcedOrRefund := cost < 0 || cost > 0 && mode == algorithms.Force
			if res.Allowed != forcedOrRefund || res.Remaining != 0 || res.RetryAfter != 0 || res.ResetAfter != 0 {
				t.Fatalf("%v: cost %d mode %d: got %+v", kind, cost, mode, res)
			}
			if !res.Allowed && res.Reason != algorithms.ReasonExceedsCapacity {
				t.Fatalf("%v: cost %d: got %+v, want exceeds_capacity", kind, cost, res)
			}
		}
	}
}

// checkInvariants checks what holds for every Apply, whatever the clock does.
func checkInvariants(t *testing.T, p algorithms.Params, before algorithms.State, o op, after algorithms.State, res algorithms.Result) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%+v, state %v, %v -> %v %+v: "+format, append([]any{p, before, o, after, res}, args...)...)
	}
	capacity := p.Capacity()
	cost := max(-algorithms.MaxLimit, min(o.cost, algorithms.MaxLimit))
	want := max(cost, 1)

	if res.Remaining < 0 || res.RetryAfter < 0 || res.ResetAfter < 0 {
		fail("negative field")
	}
	if res.Remaining > capacity {
		fail("Remaining above the capacity %d", capacity)
	}
	if res.Allowed != (res.Reason == algorithms.ReasonNone) {
		fail("Allowed and Reason disagree")
	}
	if res.RetryAfter != 0 && (res.Allowed || res.Reason == algorithms.ReasonExceedsCapacity || p.Kind == algorithms.Concurrency) {
		fail("RetryAfter must be 0 here")
	}
	if !res.Allowed && after != before {
		fail("a denial changed the state")
	}
	if cost > 0 && o.mode == algorithms.Force && !res.Allowed {
		fail("a forced charge was denied")
	}
	if (cost >= 0 && o.mode == algorithms.Normal || cost == 0) && want > capacity && res.Reason != algorithms.ReasonExceedsCapacity {
		fail("cost %d above capacity %d not reported as exceeding it", want, capacity)
	}
}
