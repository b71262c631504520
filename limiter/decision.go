package limiter

import (
	"math/bits"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

// RuleResult is the outcome of one rule in a decision.
type RuleResult struct {
	// Rule is the rule, as it was in the rule set that decided. Do not
	// modify it.
	Rule *Rule
	// Allowed reports whether the rule admitted the request (a shadow rule
	// may report false on an allowed request).
	Allowed bool
	// Reason is why the rule denied, or algorithms.ReasonNone.
	Reason algorithms.Reason
	// Limit is the rule's capacity in its Unit (the burst for buckets).
	Limit int64
	// Remaining is what the rule has left, in its Unit, never negative.
	Remaining int64
	// RetryAfter is, on a denial, how long until the request would fit;
	// 0 when it never will (see Reason) or cannot be known (concurrency).
	RetryAfter time.Duration
	// Reset is how long until the rule's counter is back to full.
	Reset time.Duration
	// StoreError reports that the store could not decide and the rule's
	// fail mode (allow or deny) gave this result. Adapters answer a denial
	// with StoreError set as unavailable (503), not as rate limited.
	StoreError bool
	// Err is the error of a guard rule (Rule.Guard) that rejected the
	// request; such a denial never passes by waiting.
	Err error
}

// maxInline is how many rule results a Decision holds without allocating.
const maxInline = 4

// Decision is the outcome of a check. It is a value: a denial is not an
// error. The zero Decision denies nothing and is not Allowed.
type Decision struct {
	// Allowed reports whether every enforcing rule admitted the request.
	Allowed bool
	// Limiting is the tightest rule: on a denial, the denying enforced rule
	// that needs the longest wait (one that can never pass comes first);
	// when allowed, the enforced rule with the smallest share left. Its
	// Rule is nil when no rule matched.
	Limiting RuleResult
	// RetryAfter is Limiting.RetryAfter on a denial, else 0.
	RetryAfter time.Duration
	// ShadowDenied reports whether a shadow rule would have denied.
	ShadowDenied bool
	// Err is the store's error when the store could not decide; Allowed
	// then follows each rule's fail mode.
	Err error
	// Reservation is non-nil when the request must be settled (token, cost,
	// delayed or concurrency rules matched and the request was allowed, or
	// the limiter has a Recorder).
	Reservation *Reservation
	// Downshifted is, when a budget denied the request and the downshift
	// hook (WithDownshift) rewrote it, the rewritten request this decision
	// is about: forward it (its Model) instead of the original. Nil
	// otherwise.
	Downshifted *Request

	results [maxInline]RuleResult
	n       int
	more    []RuleResult
}

// Len returns the number of rules that matched.
func (d Decision) Len() int { return d.n + len(d.more) }

// Result returns the result of the i'th matched rule, in rule order.
func (d Decision) Result(i int) RuleResult {
	if i < maxInline {
		return d.results[i]
	}
	return d.more[i-maxInline]
}

// Results returns every matched rule's result, in rule order. It allocates;
// Len and Result do not.
func (d Decision) Results() []RuleResult {
	out := make([]RuleResult, 0, d.Len())
	out = append(out, d.results[:min(d.n, maxInline)]...)
	return append(out, d.more...)
}

// next appends a result to d and returns it, for the caller to fill.
func (d *Decision) next() *RuleResult {
	if d.n < maxInline {
		d.n++
		return &d.results[d.n-1]
	}
	d.more = append(d.more, RuleResult{})
	return &d.more[len(d.more)-1]
}

func (d *Decision) add(r RuleResult) {
	if d.n < maxInline {
		d.results[d.n] = r
		d.n++
		return
	}
	d.more = append(d.more, r)
}

// tighterDenial reports whether denial a needs a longer wait than b.
func tighterDenial(a, b *RuleResult) bool {
	if (a.Reason == algorithms.ReasonExceedsCapacity) != (b.Reason == algorithms.ReasonExceedsCapacity) {
		return a.Reason == algorithms.ReasonExceedsCapacity
	}
	return a.RetryAfter > b.RetryAfter
}

// tighterAllowance reports whether a has a smaller share left than b.
func tighterAllowance(a, b *RuleResult) bool {
	// a.Remaining/a.Limit < b.Remaining/b.Limit, without division.
	return uint128less(a.Remaining, b.Limit, b.Remaining, a.Limit)
}

// uint128less reports whether x1*y1 < x2*y2 for non-negative values.
func uint128less(x1, y1, x2, y2 int64) bool {
	h1, l1 := bits.Mul64(uint64(x1), uint64(y1))
	h2, l2 := bits.Mul64(uint64(x2), uint64(y2))
	return h1 < h2 || h1 == h2 && l1 < l2
}
