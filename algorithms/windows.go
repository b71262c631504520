package algorithms

func slidingWindow(p *Params, s *State, now, cost int64, mode Mode, r *Result) {
	P, L := p.Period, p.Limit
	ws := windowStart(now, P, p.Offset)
	if (s[1] > 0 || s[2] > 0) && s[0] > ws {
		// The clock went back behind the key's window: stay at its start.
		ws = s[0]
	}
	var curr, prev int64
	switch s[0] {
	case ws:
		curr, prev = s[1], s[2]
	case ws - P:
		prev = s[1]
	}
	elapsed := max(0, now-ws)
	weighted := func(prev int64) int64 { return mul(prev, P-elapsed).divCeil(P) }
	reset := func(curr, prev int64) int64 {
		switch {
		case curr > 0:
			return ws + 2*P - now
		case prev > 0:
			return ws + P - now
		}
		return 0
	}
	est := weighted(prev) + curr
	want := max(cost, 1)
	switch {
	case cost < 0:
		curr += cost
		if curr < 0 {
			prev = addLevel(prev, curr)
			curr = 0
		}
	case mode == Force && cost > 0:
		curr = addLevel(curr, cost)
	case want > L:
		tooLarge(r, max(0, L-est), reset(curr, prev))
		return
	case est+want > L:
		var retry int64
		if room := L - curr - want; room >= 0 {
			// Wait inside this window until the previous count has slid
			// out far enough: ceil(prev*(P-e)/P) <= room.
			q, _ := mul(room, P).divmod(prev)
			retry = P - q - elapsed
		} else {
			// Wait for the next window, where this window's count is the
			// one sliding out: ceil(curr*(P-e)/P) <= L-want.
			q, _ := mul(L-want, P).divmod(curr)
			retry = P - elapsed + P - q
		}
		retry += elapsed - (now - ws) // the time until the clock is back in the window, if it went back
		*r = Result{Reason: ReasonLimited, Remaining: max(0, L-est), RetryAfter: retry, ResetAfter: reset(curr, prev)}
		return
	case cost > 0:
		curr += cost
	}
	if curr == 0 && prev == 0 {
		*s = State{}
		*r = Result{Allowed: true, Remaining: L}
		return
	}
	est = weighted(prev) + curr
	*s = State{ws, curr, prev}
	*r = Result{Allowed: true, Remaining: max(0, L-est), ResetAfter: reset(curr, prev)}
}

func concurrency(p *Params, s *State, now, cost int64, mode Mode, r *Result) {
	inflight, last := s[0], s[1]
	if inflight > 0 && now-last >= p.Period {
		inflight = 0 // the lease ran out
	}
	reset := func(n, last int64) int64 {
		if n == 0 {
			return 0
		}
		return max(1, last+p.Period-now)
	}
	want := max(cost, 1)
	switch {
	case cost < 0 || (mode == Force && cost > 0):
		inflight = addLevel(inflight, cost)
		last = now
	case want > p.Limit:
		tooLarge(r, max(0, p.Limit-inflight), reset(inflight, last))
		return
	case inflight+want > p.Limit:
		*r = Result{Reason: ReasonLimited, Remaining: max(0, p.Limit-inflight), ResetAfter: reset(inflight, last)}
		return
	case cost > 0:
		inflight += cost
		last = now
	}
	if inflight == 0 {
		*s = State{}
		*r = Result{Allowed: true, Remaining: p.Limit}
		return
	}
	*s = State{inflight, last, 0}
	*r = Result{Allowed: true, Remaining: max(0, p.Limit-inflight), ResetAfter: reset(inflight, last)}
}
