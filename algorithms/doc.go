// Package algorithms holds the pure state transitions behind every tollgate
// limit: fixed window, sliding window (a weighted two-window counter), token
// bucket, GCRA (the leaky bucket as a meter) and a concurrency limit.
//
// It is the single source of truth for semantics. Every store runs these
// functions, or (Redis) a Lua port of them that a differential test holds to
// the same answers. The package does no I/O, reads no clock and allocates
// nothing: time comes in as an argument.
//
// # Units
//
// Time is an int64 count of microseconds: `now` is microseconds since the
// Unix epoch, and periods, offsets, retry-after and reset-after are
// microsecond durations. Microseconds are what Redis TIME reports. All
// arithmetic is integer; products that may exceed 64 bits use 128-bit
// intermediates, so limits up to [MaxLimit] (2^53) and periods up to
// [MaxPeriod] (366 days) neither overflow nor lose precision. Inputs and
// counts stay below 2^53, but a bucket's durations need not: Burst units
// at one unit per year take 2^53 years to drain. RetryAfter and ResetAfter
// saturate at MaxInt64 µs, more than a time.Duration (ns) holds, so convert
// them with saturation; GCRA arrival times past 2^62 µs use State[2].
//
// # Costs
//
// [Apply] takes a cost and a [Mode]:
//
//   - cost > 0 consumes, all or nothing: the result is allowed and the state
//     charged, or denied and the state unchanged.
//   - cost == 0 is a peek: it answers whether one more unit would be admitted
//     and changes nothing. A delayed quota uses it: denied only when the
//     counter is already at or over the limit.
//   - cost < 0 is a refund: it gives units back, never below empty.
//   - [Force] charges a positive cost even past the limit; the result is
//     allowed. Delayed output-token quotas use it to settle.
//
// A cost larger than the capacity can never pass: it is denied with
// [ReasonExceedsCapacity] and a zero RetryAfter.
//
// # Clocks
//
// A now behind a key's own time (the clock went back) is treated as that
// time: fixed and sliding windows stay in the key's window (at its start),
// and a token bucket does not refill until the clock passes its last
// refill; RetryAfter and ResetAfter still count from now, so they stay
// exact. A concurrency lease counts from the last change. GCRA's arrival
// time is absolute, so to GCRA a clock that went back finds the bucket
// fuller; it matches TokenBucket only while the clock does not go back.
//
// # Usage
//
//	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1e6}
//	var s algorithms.State
//	s, res := algorithms.Apply(p, s, nowMicros, 1, algorithms.Normal)
//	if !res.Allowed {
//		wait := res.RetryAfter // microseconds
//	}
package algorithms
