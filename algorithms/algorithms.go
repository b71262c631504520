package algorithms

import (
	"errors"
	"fmt"
)

// Kind names an algorithm. The zero Kind is invalid.
type Kind uint8

// The algorithms. Their numeric values are part of the store wire formats
// (the Redis script receives them), so they never change.
const (
	// FixedWindow counts units in windows of Period that start at
	// Offset + k*Period; the count resets when a window ends.
	FixedWindow Kind = 1
	// SlidingWindow weighs the previous window's count by the share of it
	// still inside a sliding Period and adds the current window's count.
	SlidingWindow Kind = 2
	// TokenBucket holds Burst tokens (Limit when Burst is 0) and refills
	// Limit tokens per Period, continuously.
	TokenBucket Kind = 3
	// GCRA is the generic cell rate algorithm (the leaky bucket as a meter):
	// a theoretical arrival time advances Period/Limit per unit, with a
	// tolerance of Burst units. It admits exactly what TokenBucket admits
	// with the same parameters (while the clock does not go back); its
	// state is one timestamp.
	GCRA Kind = 4
	// Concurrency limits units in flight: a positive cost acquires, a
	// negative cost releases. Period is a lease: the count of a key that
	// sees no operation for Period is forgotten, so slots held by a crashed
	// process come back.
	Concurrency Kind = 5
)

var kindNames = [...]string{"", "fixed_window", "sliding_window", "token_bucket", "gcra", "concurrency"}

// String returns the canonical snake_case name of k, as policy files spell it.
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("algorithms.Kind(%d)", k)
}

// ParseKind returns the Kind whose canonical name is s.
func ParseKind(s string) (Kind, bool) {
	for i := 1; i < len(kindNames); i++ {
		if kindNames[i] == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// Limits on parameters, chosen so that every value stays exact in a double
// (the Redis Lua port) and every product fits 128 bits.
const (
	// MaxLimit is the largest Limit, Burst and absolute cost: 2^53.
	MaxLimit = 1 << 53
	// MaxPeriod is the longest Period: 366 days, in microseconds.
	MaxPeriod = 366 * 24 * 3600 * 1_000_000
	// maxLevel bounds every counter in a state, so forced charges saturate
	// instead of overflowing.
	maxLevel = MaxLimit
)

// ErrInvalidParams is wrapped by every error [Params.Validate] returns.
var ErrInvalidParams = errors.New("algorithms: invalid parameters")

// Params are the parameters of one limit. The zero Params is invalid.
type Params struct {
	// Kind selects the algorithm.
	Kind Kind
	// Limit is the number of units admitted per Period (fixed and sliding
	// window), the refill per Period (token bucket, GCRA), or the number
	// of units in flight (concurrency). 0 admits nothing. At most MaxLimit.
	Limit int64
	// Period is the window, refill period or lease, in microseconds,
	// from 1 to MaxPeriod.
	Period int64
	// Burst is the bucket capacity for TokenBucket and GCRA; 0 means Limit.
	// Other algorithms ignore it. At most MaxLimit.
	Burst int64
	// Offset aligns windows (fixed and sliding): they start at
	// Offset + k*Period microseconds since the epoch: any one window start,
	// such as a local midnight. Calendar days in a zone east of UTC by z
	// use Offset = -z (UTC+5:30: -5h30m), not z. 0 aligns to the epoch.
	// It is taken modulo Period.
	Offset int64
}

// Validate reports whether p can be used with [Apply].
func (p Params) Validate() error {
	switch {
	case p.Kind < FixedWindow || p.Kind > Concurrency:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidParams, p.Kind)
	case p.Limit < 0 || p.Limit > MaxLimit:
		return fmt.Errorf("%w: limit %d outside [0, 2^53]", ErrInvalidParams, p.Limit)
	case p.Period < 1 || p.Period > MaxPeriod:
		return fmt.Errorf("%w: period %dµs outside [1µs, 366d]", ErrInvalidParams, p.Period)
	case p.Burst < 0 || p.Burst > MaxLimit:
		return fmt.Errorf("%w: burst %d outside [0, 2^53]", ErrInvalidParams, p.Burst)
	}
	return nil
}

// Valid reports whether p.Validate() would return nil, without building
// an error or copying p: cheap enough for a hot path to check before it
// asks Validate why.
func (p *Params) Valid() bool {
	// Unsigned comparisons: a negative value wraps past every bound.
	return uint8(p.Kind-FixedWindow) <= uint8(Concurrency-FixedWindow) &&
		uint64(p.Limit) <= MaxLimit &&
		uint64(p.Period-1) < MaxPeriod &&
		uint64(p.Burst) <= MaxLimit
}

// capacityOf is Capacity without copying *p.
func capacityOf(p *Params) int64 {
	if p.Limit == 0 {
		return 0
	}
	if (p.Kind == TokenBucket || p.Kind == GCRA) && p.Burst > 0 {
		return p.Burst
	}
	return p.Limit
}

// Capacity returns the most units a single cost may have and still pass
// some day: Burst (or Limit) for buckets, Limit otherwise.
func (p Params) Capacity() int64 {
	if p.Limit == 0 {
		return 0
	}
	if (p.Kind == TokenBucket || p.Kind == GCRA) && p.Burst > 0 {
		return p.Burst
	}
	return p.Limit
}

// State is the per-key state of any algorithm: three integers whose meaning
// depends on the Kind. The zero State is a fresh key. A store keeps it
// as it is and hands it back; it never interprets it.
//
//	FixedWindow:   [window start µs, count, 0]
//	SlidingWindow: [current window start µs, current count, previous count]
//	TokenBucket:   [units used, last update µs, refill remainder (units*µs)]
//	GCRA:          [theoretical arrival time µs, its fraction in 1/Limit µs, 0]
//	               (from 2^62µs on: [its low 62 bits, fraction, the high bits])
//	Concurrency:   [units in flight, last acquire or release µs, 0]
type State [3]int64

// Mode changes how a positive cost is applied.
type Mode uint8

const (
	// Normal admits a positive cost only when it fits.
	Normal Mode = 0
	// Force charges a positive cost even past the limit and reports it
	// allowed. It is how delayed quotas settle.
	Force Mode = 1
)

// Reason says why a result was denied.
type Reason uint8

const (
	// ReasonNone: the result was allowed.
	ReasonNone Reason = 0
	// ReasonLimited: the limit is reached; RetryAfter says when the cost fits.
	ReasonLimited Reason = 1
	// ReasonExceedsCapacity: the cost is larger than the capacity and will
	// never pass; RetryAfter is 0.
	ReasonExceedsCapacity Reason = 2
)

// String returns a short name for r.
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonLimited:
		return "limited"
	case ReasonExceedsCapacity:
		return "exceeds_capacity"
	}
	return fmt.Sprintf("algorithms.Reason(%d)", r)
}

// Result is the outcome of one [Apply]. Durations are microseconds.
type Result struct {
	// Allowed reports whether the cost was admitted (or, for a peek, whether
	// one more unit would be).
	Allowed bool
	// Reason is ReasonNone when Allowed, else why not.
	Reason Reason
	// Remaining is the number of units still available after this call,
	// never negative.
	Remaining int64
	// RetryAfter is, on a denial, the time until the same cost would be
	// admitted if nothing else happened; 0 when allowed, when the cost can
	// never pass, and for Concurrency (a slot frees when a holder releases).
	RetryAfter int64
	// ResetAfter is the time until the key is back to its fresh state, were
	// nothing else to happen. Stores use it as the key's time to live.
	ResetAfter int64
}

// Apply applies cost to the state s of a key with parameters p at time now
// (µs since the epoch) and returns the new state and the result. On a
// denial, a peek, or an invalid p, the returned state carries no new charge.
// Apply assumes p is valid ([Params.Validate]); invalid parameters give a
// denial with ReasonExceedsCapacity.
//
// Apply never allocates and is safe for concurrent use (it is pure).
func Apply(p Params, s State, now, cost int64, mode Mode) (State, Result) {
	var r Result
	apply(&p, &s, now, cost, mode, &r)
	return s, r
}

// Update is [Apply] in place, for stores on a hot path: it applies cost to
// the state *s with parameters *p at time now, writes the result to *r, and
// leaves *s as Apply would return it. It copies neither the state nor the
// parameters. s, p and r must not overlap.
func Update(s *State, p *Params, now, cost int64, mode Mode, r *Result) {
	apply(p, s, now, cost, mode, r)
}

func apply(p *Params, s *State, now, cost int64, mode Mode, r *Result) {
	if !p.Valid() {
		*r = Result{Reason: ReasonExceedsCapacity}
		return
	}
	cost = clamp(cost, -MaxLimit, MaxLimit)
	if p.Limit == 0 {
		// Nothing is ever admitted, so nothing is ever stored.
		*s = State{}
		if cost < 0 || (mode == Force && cost > 0) {
			*r = Result{Allowed: true}
			return
		}
		*r = Result{Reason: ReasonExceedsCapacity}
		return
	}
	switch p.Kind {
	case FixedWindow:
		fixedWindow(p, s, now, cost, mode, r)
	case SlidingWindow:
		slidingWindow(p, s, now, cost, mode, r)
	case TokenBucket:
		tokenBucket(p, s, now, cost, mode, r)
	case GCRA:
		gcra(p, s, now, cost, mode, r)
	default:
		concurrency(p, s, now, cost, mode, r)
	}
}

func clamp(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}

// addLevel adds c (possibly negative) to a counter, keeping it in [0, maxLevel].
func addLevel(v, c int64) int64 {
	return clamp(v+c, 0, maxLevel)
}

// windowStart returns the start of the window of period p holding now.
func windowStart(now, period, offset int64) int64 {
	off := offset
	if uint64(off) >= uint64(period) { // 0 <= offset < period needs no %
		off %= period
	}
	d := now - off
	if d >= 0 {
		// One unsigned division: cheaper than the signed one.
		return now - int64(uint64(d)%uint64(period))
	}
	r := d % period
	if r < 0 {
		r += period
	}
	return now - r
}

// tooLarge writes the result for a cost larger than the capacity, which
// never fits.
func tooLarge(r *Result, remaining, resetAfter int64) {
	*r = Result{Reason: ReasonExceedsCapacity, Remaining: remaining, ResetAfter: resetAfter}
}

func fixedWindow(p *Params, s *State, now, cost int64, mode Mode, r *Result) {
	ws := windowStart(now, p.Period, p.Offset)
	if s[1] > 0 && s[0] > ws {
		// The clock went back behind the key's window: stay in it, so a
		// step back neither forgets its count nor admits a second Limit.
		ws = s[0]
	}
	count := s[1]
	if s[0] != ws {
		count = 0
	}
	reset := ws + p.Period - now
	ttl := func(c int64) int64 {
		if c == 0 {
			return 0
		}
		return reset
	}
	want := max(cost, 1) // a peek asks about one unit
	switch {
	case cost < 0:
		count = addLevel(count, cost)
	case mode == Force && cost > 0:
		count = addLevel(count, cost)
	case want > p.Limit:
		tooLarge(r, max(0, p.Limit-count), ttl(count))
		return
	case count+want > p.Limit:
		*r = Result{Reason: ReasonLimited, Remaining: max(0, p.Limit-count), RetryAfter: reset, ResetAfter: reset}
		return
	case cost > 0:
		count += cost
	}
	if count == 0 {
		*s = State{}
		*r = Result{Allowed: true, Remaining: p.Limit}
		return
	}
	*s = State{ws, count, 0}
	*r = Result{Allowed: true, Remaining: max(0, p.Limit-count), ResetAfter: reset}
}
