package algorithms_test

import (
	"math"
	"math/big"

	"github.com/tollgate-go/tollgate/algorithms"
)

// The reference models below are written from the package documentation,
// not from the implementation: they keep exact quantities (big.Int windows,
// big.Rat token levels) and their own state, and answer with
// algorithms.Result values so a test can compare every field. Durations
// that do not fit an int64 are saturated at math.MaxInt64, as Apply does.

// model is the reference semantics of one key.
type model interface {
	apply(now, cost int64, mode algorithms.Mode) algorithms.Result
}

func newModel(p algorithms.Params) model {
	switch p.Kind {
	case algorithms.FixedWindow:
		return &fixedModel{p: p}
	case algorithms.SlidingWindow:
		return &slidingModel{p: p}
	case algorithms.TokenBucket, algorithms.GCRA:
		// GCRA is documented to admit exactly what TokenBucket admits.
		return &bucketModel{p: p, used: new(big.Rat)}
	case algorithms.Concurrency:
		return &concurrencyModel{p: p}
	}
	panic("unknown kind")
}

// clampCost is the documented treatment of costs beyond ±MaxLimit.
func clampCost(c int64) int64 {
	return max(-algorithms.MaxLimit, min(c, algorithms.MaxLimit))
}

// limitZero is the documented behaviour of Limit 0: nothing is admitted,
// refunds and forced charges are accepted and store nothing.
func limitZero(cost int64, mode algorithms.Mode) algorithms.Result {
	if cost < 0 || (mode == algorithms.Force && cost > 0) {
		return algorithms.Result{Allowed: true}
	}
	return algorithms.Result{Reason: algorithms.ReasonExceedsCapacity}
}

func bi(v int64) *big.Int { return big.NewInt(v) }

// sat converts an exact non-negative duration or count to int64,
// saturating at math.MaxInt64.
func sat(x *big.Int) int64 {
	if x.Sign() < 0 {
		panic("model produced a negative value: " + x.String())
	}
	if !x.IsInt64() {
		return math.MaxInt64
	}
	return x.Int64()
}

// ceilRat returns ⌈r⌉.
func ceilRat(r *big.Rat) *big.Int {
	q, m := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int)) // Euclidean: m >= 0
	if m.Sign() != 0 {
		q.Add(q, bi(1))
	}
	return q
}

// floorRat returns ⌊r⌋.
func floorRat(r *big.Rat) *big.Int {
	q, _ := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	return q
}

// window returns the index k of the window [Offset+k*P, Offset+(k+1)*P)
// holding now, and the µs from now to that window's end.
func window(p algorithms.Params, now int64) (k *big.Int, untilEnd int64) {
	d := new(big.Int).Sub(bi(now), bi(p.Offset))
	k, m := new(big.Int).DivMod(d, bi(p.Period), new(big.Int)) // floor division
	return k, p.Period - m.Int64()
}

// untilEndOf returns the µs from now to the end of window k.
func untilEndOf(p algorithms.Params, k *big.Int, now int64) int64 {
	end := new(big.Int).Mul(new(big.Int).Add(k, bi(1)), bi(p.Period))
	end.Add(end, bi(p.Offset))
	return sat(end.Sub(end, bi(now)))
}

// fixedModel: a count per window; a window's count is gone once a later
// window is current. A clock that goes back stays in the key's window.
type fixedModel struct {
	p     algorithms.Params
	win   *big.Int // window of count; nil when nothing is counted
	count int64
}

func (m *fixedModel) apply(now, cost int64, mode algorithms.Mode) algorithms.Result {
	cost = clampCost(cost)
	L := m.p.Limit
	if L == 0 {
		return limitZero(cost, mode)
	}
	k, untilEnd := window(m.p, now)
	if m.win != nil && m.count > 0 && m.win.Cmp(k) > 0 {
		// A clock that went back behind the key's window stays in it.
		k, untilEnd = m.win, untilEndOf(m.p, m.win, now)
	}
	var count int64
	if m.win != nil && m.win.Cmp(k) == 0 {
		count = m.count
	}
	resetAfter := func(c int64) int64 {
		if c > 0 {
			return untilEnd
		}
		return 0
	}
	want := max(cost, 1) // a peek asks about one unit
	switch {
	case cost < 0:
		count = max(0, count+cost)
	case cost > 0 && mode == algorithms.Force:
		count = min(count+cost, algorithms.MaxLimit)
	case want > L:
		return algorithms.Result{Reason: algorithms.ReasonExceedsCapacity, Remaining: max(0, L-count), ResetAfter: resetAfter(count)}
	case count+want > L:
		// Nothing changes before the window ends; then the count is 0.
		return algorithms.Result{Reason: algorithms.ReasonLimited, Remaining: max(0, L-count), RetryAfter: untilEnd, ResetAfter: untilEnd}
	default:
		count += cost
	}
	m.win, m.count = k, count
	return algorithms.Result{Allowed: true, Remaining: max(0, L-count), ResetAfter: resetAfter(count)}
}

// slidingModel: counts of the current and the previous window; the
// estimate is ⌈prev·(P−e)/P⌉ + curr where e is the time elapsed in the
// current window.
type slidingModel struct {
	p          algorithms.Params
	win        *big.Int // window of curr; nil when nothing is counted
	curr, prev int64
}

func (m *slidingModel) apply(now, cost int64, mode algorithms.Mode) algorithms.Result {
	cost = clampCost(cost)
	L, P := m.p.Limit, m.p.Period
	if L == 0 {
		return limitZero(cost, mode)
	}
	k, untilEnd := window(m.p, now)
	e := P - untilEnd
	var behind int64
	if m.win != nil && (m.curr > 0 || m.prev > 0) && m.win.Cmp(k) > 0 {
		// A clock that went back behind the key's window is taken to be
		// at its start; durations still count from now.
		k, untilEnd, e = m.win, untilEndOf(m.p, m.win, now), 0
		behind = untilEnd - P
	}
	var curr, prev int64
	if m.win != nil {
		// Only the current and the previous window count; any other
		// (further back, or ahead after a clock went back) keeps nothing.
		switch d := new(big.Int).Sub(k, m.win); {
		case d.Sign() == 0:
			curr, prev = m.curr, m.prev
		case d.Cmp(bi(1)) == 0:
			prev = m.curr
		}
	}
	est := func(curr, prev int64) int64 {
		w := big.NewRat(prev, 1)
		w.Mul(w, big.NewRat(P-e, P))
		return sat(ceilRat(w)) + curr
	}
	resetAfter := func(curr, prev int64) int64 {
		switch {
		case curr > 0:
			return untilEnd + P // curr slides out by the end of the next window
		case prev > 0:
			return untilEnd
		}
		return 0
	}
	want := max(cost, 1)
	switch {
	case cost < 0:
		// A refund takes back the newest units first, then older ones.
		curr += cost
		if curr < 0 {
			prev = max(0, prev+curr)
			curr = 0
		}
	case cost > 0 && mode == algorithms.Force:
		curr = min(curr+cost, algorithms.MaxLimit)
	case want > L:
		return algorithms.Result{Reason: algorithms.ReasonExceedsCapacity, Remaining: max(0, L-est(curr, prev)), ResetAfter: resetAfter(curr, prev)}
	case est(curr, prev)+want > L:
		return algorithms.Result{Reason: algorithms.ReasonLimited, Remaining: max(0, L-est(curr, prev)),
			RetryAfter: behind + slidingRetry(P, L, e, curr, prev, want), ResetAfter: resetAfter(curr, prev)}
	default:
		curr += cost
	}
	m.win, m.curr, m.prev = k, curr, prev
	return algorithms.Result{Allowed: true, Remaining: max(0, L-est(curr, prev)), ResetAfter: resetAfter(curr, prev)}
}

// slidingRetry is the least t > 0 at which want units fit, found from the
// inequality ⌈c·(P−e')/P⌉ ≤ n ⇔ c·(P−e')/P ≤ n ⇔ e' ≥ P − n·P/c.
func slidingRetry(P, L, e, curr, prev, want int64) int64 {
	if room := L - curr - want; room >= 0 {
		// Later in this window (or at its end, where prev weighs nothing
		// and curr+want fits).
		at := new(big.Rat).Sub(big.NewRat(P, 1), new(big.Rat).Mul(big.NewRat(room, 1), big.NewRat(P, prev)))
		return sat(ceilRat(at)) - e
	}
	// curr+want never fits in this window; in the next one curr is the
	// previous window: need ⌈curr·(P−e'')/P⌉ ≤ L−want.
	at := new(big.Rat).Sub(big.NewRat(P, 1), new(big.Rat).Mul(big.NewRat(L-want, 1), big.NewRat(P, curr)))
	return (P - e) + sat(ceilRat(at))
}

// bucketModel: the exact number of tokens used, draining at Limit/Period
// per µs and never below 0. An empty bucket remembers no time. A clock that
// goes back does not refill.
type bucketModel struct {
	p     algorithms.Params
	used  *big.Rat
	tlast int64
}

func (m *bucketModel) apply(now, cost int64, mode algorithms.Mode) algorithms.Result {
	cost = clampCost(cost)
	L, P, B := m.p.Limit, m.p.Period, m.p.Capacity()
	if L == 0 {
		return limitZero(cost, mode)
	}
	// A denial leaves the model as it was.
	used, tlast := new(big.Rat).Set(m.used), m.tlast
	if used.Sign() == 0 {
		tlast = now
	} else if now > tlast {
		drained := new(big.Rat).Mul(new(big.Rat).SetInt(new(big.Int).Sub(bi(now), bi(tlast))), big.NewRat(L, P))
		used.Sub(used, drained)
		if used.Sign() < 0 {
			used.SetInt64(0)
		}
		tlast = now
	}
	// drain is how long until `units` more tokens have drained.
	// drain is how long from now until `units` more tokens have drained;
	// with a clock behind the last change, draining starts only then.
	drain := func(units *big.Rat) int64 {
		if units.Sign() <= 0 {
			return 0
		}
		d := ceilRat(new(big.Rat).Mul(units, big.NewRat(P, L)))
		if tlast > now {
			d.Add(d, new(big.Int).Sub(bi(tlast), bi(now)))
		}
		return sat(d)
	}
	remaining := func() int64 {
		r := floorRat(new(big.Rat).Sub(big.NewRat(B, 1), used))
		if r.Sign() < 0 {
			return 0
		}
		return r.Int64()
	}
	want := max(cost, 1)
	fits := new(big.Rat).Add(used, big.NewRat(want, 1)).Cmp(big.NewRat(B, 1)) <= 0
	switch {
	case cost < 0:
		used.Add(used, big.NewRat(cost, 1))
		if used.Sign() < 0 {
			used.SetInt64(0)
		}
	case cost > 0 && mode == algorithms.Force:
		// Units used saturate at MaxLimit, like every counter.
		used.Add(used, big.NewRat(cost, 1))
		if limit := big.NewRat(algorithms.MaxLimit, 1); used.Cmp(limit) > 0 {
			used = limit
		}
	case want > B:
		return algorithms.Result{Reason: algorithms.ReasonExceedsCapacity, Remaining: remaining(), ResetAfter: drain(used)}
	case !fits:
		over := new(big.Rat).Sub(new(big.Rat).Add(used, big.NewRat(want, 1)), big.NewRat(B, 1))
		return algorithms.Result{Reason: algorithms.ReasonLimited, Remaining: remaining(), RetryAfter: drain(over), ResetAfter: drain(used)}
	default:
		used.Add(used, big.NewRat(cost, 1))
	}
	m.used, m.tlast = used, tlast
	return algorithms.Result{Allowed: true, Remaining: remaining(), ResetAfter: drain(used)}
}

// concurrencyModel: units in flight, forgotten when the key sees no change
// for a whole Period (the lease).
type concurrencyModel struct {
	p              algorithms.Params
	inflight, last int64
}

func (m *concurrencyModel) apply(now, cost int64, mode algorithms.Mode) algorithms.Result {
	cost = clampCost(cost)
	L := m.p.Limit
	if L == 0 {
		return limitZero(cost, mode)
	}
	inflight, last := m.inflight, m.last
	if inflight > 0 && now-last >= m.p.Period {
		inflight = 0 // the lease ran out
	}
	resetAfter := func() int64 {
		if inflight == 0 {
			return 0
		}
		return last + m.p.Period - now
	}
	want := max(cost, 1)
	switch {
	case cost < 0 || (cost > 0 && mode == algorithms.Force):
		inflight = max(0, min(inflight+cost, algorithms.MaxLimit))
		last = now
	case want > L:
		return algorithms.Result{Reason: algorithms.ReasonExceedsCapacity, Remaining: max(0, L-inflight), ResetAfter: resetAfter()}
	case inflight+want > L:
		// No RetryAfter: a slot frees when a holder releases.
		return algorithms.Result{Reason: algorithms.ReasonLimited, Remaining: max(0, L-inflight), ResetAfter: resetAfter()}
	case cost > 0:
		inflight += cost
		last = now
	}
	m.inflight, m.last = inflight, last
	return algorithms.Result{Allowed: true, Remaining: max(0, L-inflight), ResetAfter: resetAfter()}
}
