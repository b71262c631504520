package algorithms

// tokenBucket keeps the units used (how empty the bucket is), the time of
// the last refill, and the refill remainder: the part of Limit*elapsed that
// has not made a whole unit yet, in [0, Period).
func tokenBucket(p *Params, s *State, now, cost int64, mode Mode, r *Result) {
	P, L, B := p.Period, p.Limit, capacityOf(p)
	level, last, frac := s[0], s[1], s[2]
	if level <= 0 {
		level, frac, last = 0, 0, now
	} else if now > last {
		q, rem := mul(now-last, L).add(frac).divmod(P)
		if q >= level {
			level, frac = 0, 0
		} else {
			level, frac = level-q, rem
		}
		last = now
	}
	// drainTime is how long until `units` more units have drained. A clock
	// that went back behind the last refill drains nothing until it is
	// back there.
	behind := max(0, last-now)
	drainTime := func(units int64) int64 {
		if units <= 0 {
			return 0
		}
		return min(mul(units, P).minus(u128{lo: uint64(frac)}).divCeil(L), maxInt64-behind) + behind
	}
	want := max(cost, 1)
	switch {
	case cost < 0:
		level = addLevel(level, cost)
	case mode == Force && cost > 0:
		if level+cost > maxLevel {
			// Units used (level - frac/Period) saturate at exactly maxLevel,
			// as GCRA's do.
			level, frac = maxLevel, 0
		} else {
			level += cost
		}
	case want > B:
		tooLarge(r, max(0, B-level), drainTime(level))
		return
	case level+want > B:
		*r = Result{Reason: ReasonLimited, Remaining: max(0, B-level), RetryAfter: drainTime(level + want - B), ResetAfter: drainTime(level)}
		return
	case cost > 0:
		level += cost
	}
	if level == 0 {
		*s = State{}
		*r = Result{Allowed: true, Remaining: B}
		return
	}
	*s = State{level, last, frac}
	*r = Result{Allowed: true, Remaining: max(0, B-level), ResetAfter: drainTime(level)}
}

// gcra keeps the theoretical arrival time: the moment the bucket would be
// empty of charges. It is kept as whole µs plus a fraction in units of
// 1/Limit µs, so that Period/Limit per unit accumulates without rounding.
func gcra(p *Params, s *State, now, cost int64, mode Mode, r *Result) {
	P, L, B := p.Period, p.Limit, capacityOf(p)
	tat, tatFrac := s[0], s[1]
	// x is how far the arrival time lies ahead of now, in 1/Limit µs:
	// the units still charged, times Period.
	var x u128
	if s[2] != 0 {
		// An arrival time of 2^62µs or more, in two parts (see below).
		at := u128{hi: uint64(s[2]) >> (64 - tatLowBits), lo: uint64(s[2])<<tatLowBits | uint64(tat)}
		if n := (u128{lo: uint64(max(now, 0))}); at.cmp(n) > 0 {
			x = at.minus(n).mul64(L).add(tatFrac)
		}
	} else if tat > now || (tat == now && tatFrac > 0) {
		x = mul(tat-now, L).add(tatFrac)
	}
	capacity := mul(B, P)
	ceilL := func(v u128) int64 { return v.divCeil(L) }
	remaining := func(x u128) int64 {
		if x.cmp(capacity) >= 0 {
			return 0
		}
		q, _ := capacity.minus(x).divmod(P)
		return q
	}
	want := max(cost, 1)
	switch {
	case cost < 0:
		if refund := mul(-cost, P); refund.cmp(x) >= 0 {
			x = u128{}
		} else {
			x = x.minus(refund)
		}
	case mode == Force && cost > 0:
		x = x.plus(mul(cost, P))
		if ceiling := mul(maxLevel, P); x.cmp(ceiling) > 0 {
			x = ceiling
		}
	case want > B:
		tooLarge(r, remaining(x), ceilL(x))
		return
	case x.plus(mul(want, P)).cmp(capacity) > 0:
		retry := ceilL(x.minus(mul(B-want, P)))
		*r = Result{Reason: ReasonLimited, Remaining: remaining(x), RetryAfter: retry, ResetAfter: ceilL(x)}
		return
	case cost > 0:
		x = x.plus(mul(cost, P))
	}
	if x == (u128{}) {
		*s = State{}
		*r = Result{Allowed: true, Remaining: B}
		return
	}
	*r = Result{Allowed: true, Remaining: remaining(x), ResetAfter: ceilL(x)}
	q, rem := x.quo(L)
	const low = 1<<tatLowBits - 1
	if q.hi == 0 && q.lo <= low && now <= low && now+int64(q.lo) <= low {
		*s = State{now + int64(q.lo), rem, 0}
		return
	}
	// A small Limit with a large Burst or forced charge puts the arrival
	// time past 2^62µs (146,000 years): its high bits go to s[2], so it
	// neither wraps around into the past (an empty bucket) nor saturates.
	at := q.plus(u128{lo: uint64(max(now, 0))})
	*s = State{int64(at.lo & low), rem, int64(at.hi<<(64-tatLowBits) | at.lo>>tatLowBits)}
}

// tatLowBits is how many bits of a GCRA arrival time s[0] holds when s[2]
// holds the rest; arrival times below 2^62µs are s[0] alone, with s[2] 0.
const tatLowBits = 62
