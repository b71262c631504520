package httplimit

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
)

// Canonical header keys, written straight into the map.
const (
	hRetryAfter   = "Retry-After"
	hRateLimit    = "Ratelimit"        // RateLimit
	hPolicy       = "Ratelimit-Policy" // RateLimit-Policy
	hRetryAfterMs = "Retry-After-Ms"
	hShouldRetry  = "X-Should-Retry"
	hLimitReq     = "X-Ratelimit-Limit-Requests"
	hRemainReq    = "X-Ratelimit-Remaining-Requests"
	hResetReq     = "X-Ratelimit-Reset-Requests"
	hLimitTok     = "X-Ratelimit-Limit-Tokens"
	hRemainTok    = "X-Ratelimit-Remaining-Tokens"
	hResetTok     = "X-Ratelimit-Reset-Tokens"
)

// ceilSeconds returns d in whole seconds, rounded up, never negative.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// RetryAfterSeconds returns the Retry-After value of a denial that passes
// after d: d in seconds rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 { return max(ceilSeconds(d), 1) }

// enforcing reports whether rr is from an enforced, counting rule: the
// rules the headers describe.
func enforcing(rr *limiter.RuleResult) bool {
	return rr.Rule != nil && rr.Rule.Mode == limiter.Enforce && rr.Rule.Guard == nil
}

// setHeaders writes the rate-limit headers of d into h.
func (m *Middleware) setHeaders(h http.Header, d *limiter.Decision) {
	lim := &d.Limiting
	if lim.Rule == nil || lim.Err != nil {
		return // no rule matched, or a guard refused: nothing to advertise
	}
	var buf [256]byte
	if !d.Allowed {
		if lim.StoreError {
			setValue(h, hRetryAfter, strconv.AppendInt(buf[:0], m.cfg.unavailable, 10))
			return
		}
		if lim.Reason == algorithms.ReasonExceedsCapacity {
			// It will never pass: a Retry-After would only invite a loop.
			if m.cfg.openAI {
				setValue(h, hShouldRetry, append(buf[:0], "false"...))
			}
		} else {
			setValue(h, hRetryAfter, strconv.AppendInt(buf[:0], RetryAfterSeconds(d.RetryAfter), 10))
			if m.cfg.openAI {
				ms := max(int64((d.RetryAfter+time.Millisecond-1)/time.Millisecond), 1)
				setValue(h, hRetryAfterMs, strconv.AppendInt(buf[:0], ms, 10))
			}
		}
	}
	if !enforcing(lim) {
		return
	}
	// RateLimit: the tightest policy only (the draft asks for the one
	// with the least left); on a denial its reset is the Retry-After.
	b := appendItem(buf[:0], lim.Rule.Name)
	b = append(b, ";r="...)
	b = appendSFInt(b, lim.Remaining)
	t := lim.Reset
	if !d.Allowed {
		t = d.RetryAfter
	}
	b = append(b, ";t="...)
	b = appendSFInt(b, ceilSeconds(t))
	setValue(h, hRateLimit, b)
	if m.cfg.policy {
		if d.Len() == 1 {
			h[hPolicy] = m.policies.get(lim)
		} else {
			m.setPolicies(h, d, buf[:0])
		}
	}
	if m.cfg.openAI {
		m.setOpenAIHeaders(h, d)
	}
}

// setPolicies writes the RateLimit-Policy of a decision of several rules.
func (m *Middleware) setPolicies(h http.Header, d *limiter.Decision, b []byte) {
	for i := range d.Len() {
		rr := d.Result(i)
		if !enforcing(&rr) {
			continue
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = appendPolicy(b, &rr)
	}
	if len(b) > 0 {
		setValue(h, hPolicy, b)
	}
}

// headerValue is a header value and its text in one allocation.
type headerValue struct {
	v [1]string
	b [104]byte
}

// setValue sets h[key] to the text b (copied) with one allocation. The
// slice it stores has no spare capacity, so an Add copies it.
func setValue(h http.Header, key string, b []byte) {
	if len(b) > len(headerValue{}.b) || len(b) == 0 {
		h[key] = []string{string(b)}
		return
	}
	hv := new(headerValue)
	n := copy(hv.b[:], b)
	hv.v[0] = unsafe.String(&hv.b[0], n)
	h[key] = hv.v[:1:1]
}

// policyCache keeps the RateLimit-Policy value of single-rule decisions,
// by rule, so that the common case allocates nothing for it. It holds at
// most maxCachedPolicies entries and starts afresh when full (rule sets
// replaced many times).
type policyCache struct {
	m atomic.Pointer[sync.Map]
	n atomic.Int64
}

const maxCachedPolicies = 1024

func (c *policyCache) get(rr *limiter.RuleResult) []string {
	m := c.m.Load()
	if m != nil {
		if v, ok := m.Load(rr.Rule); ok {
			return v.([]string)
		}
	}
	v := []string{string(appendPolicy(nil, rr))}
	if m == nil || c.n.Load() >= maxCachedPolicies {
		m = new(sync.Map)
		c.m.Store(m)
		c.n.Store(0)
	}
	if _, loaded := m.LoadOrStore(rr.Rule, v); !loaded {
		c.n.Add(1)
	}
	return v
}

// appendItem appends a policy name as a structured-field String. Rule
// names are [A-Za-z0-9_.:/-], which need no escaping.
func appendItem(b []byte, name string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"')
}

// appendPolicy appends one RateLimit-Policy item:
// "name";q=<quota>[;qu="<unit>"][;w=<window seconds>][;tollgate-burst=<n>].
func appendPolicy(b []byte, rr *limiter.RuleResult) []byte {
	r := rr.Rule
	b = appendItem(b, r.Name)
	b = append(b, ";q="...)
	// q per w is the rule's rate; a bucket's burst, when it differs, is
	// the vendor parameter tollgate-burst.
	b = appendSFInt(b, r.Limit)
	switch {
	case r.Algorithm == algorithms.Concurrency:
		b = append(b, `;qu="concurrent-requests"`...)
	case r.Unit == limiter.Tokens:
		b = append(b, `;qu="tokens"`...)
	case r.Unit == limiter.InputTokens:
		b = append(b, `;qu="input-tokens"`...)
	case r.Unit == limiter.OutputTokens:
		b = append(b, `;qu="output-tokens"`...)
	case r.Unit == limiter.Cost:
		b = append(b, `;qu="cost-micros"`...)
	}
	if w := window(r); w > 0 && r.Algorithm != algorithms.Concurrency {
		b = append(b, ";w="...)
		b = appendSFInt(b, w)
	}
	if rr.Limit != r.Limit {
		b = append(b, ";tollgate-burst="...)
		b = appendSFInt(b, rr.Limit)
	}
	return b
}

// maxSFInt is the largest Integer of RFC 9651 structured fields (15 digits).
const maxSFInt = 999_999_999_999_999

// appendSFInt appends v as a structured-field Integer, clamped to its
// range: limits go up to 2^53 (16 digits), which the grammar does not
// allow, and a strict parser would reject the whole field.
func appendSFInt(b []byte, v int64) []byte {
	return strconv.AppendInt(b, max(-maxSFInt, min(v, maxSFInt)), 10)
}

// window returns a rule's window in whole seconds, rounded up; 0 when it
// varies (calendar months).
func window(r *limiter.Rule) int64 {
	switch r.Calendar {
	case limiter.Day:
		return 86400
	case limiter.Week:
		return 7 * 86400
	case limiter.Month:
		return 0
	}
	return ceilSeconds(r.Period)
}

// setOpenAIHeaders writes the x-ratelimit-* headers for the tightest
// requests rule and the tightest token rule.
func (m *Middleware) setOpenAIHeaders(h http.Header, d *limiter.Decision) {
	var req, tok limiter.RuleResult
	for i := range d.Len() {
		rr := d.Result(i)
		if !enforcing(&rr) {
			continue
		}
		switch rr.Rule.Unit {
		case limiter.Requests:
			if tighter(&rr, &req) {
				req = rr
			}
		case limiter.Tokens, limiter.InputTokens, limiter.OutputTokens:
			if tighter(&rr, &tok) {
				tok = rr
			}
		}
	}
	if req.Rule != nil {
		setOpenAI(h, &req, hLimitReq, hRemainReq, hResetReq)
	}
	if tok.Rule != nil {
		setOpenAI(h, &tok, hLimitTok, hRemainTok, hResetTok)
	}
}

// tighter reports whether a binds harder than b (b may be empty): a denial
// beats an admission, then the smaller share left.
func tighter(a, b *limiter.RuleResult) bool {
	if b.Rule == nil {
		return true
	}
	if a.Allowed != b.Allowed {
		return !a.Allowed
	}
	// a.Remaining/a.Limit < b.Remaining/b.Limit; the values are below 2^53.
	return float64(a.Remaining)*float64(b.Limit) < float64(b.Remaining)*float64(a.Limit)
}

func setOpenAI(h http.Header, rr *limiter.RuleResult, limit, remaining, reset string) {
	var buf [32]byte
	setValue(h, limit, strconv.AppendInt(buf[:0], rr.Limit, 10))
	setValue(h, remaining, strconv.AppendInt(buf[:0], rr.Remaining, 10))
	t := rr.Reset
	if !rr.Allowed && rr.RetryAfter > 0 {
		t = rr.RetryAfter
	}
	h[reset] = []string{t.Round(time.Millisecond).String()}
}
