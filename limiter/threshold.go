package limiter

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// defaultThresholds are the thresholds of a rule whose Thresholds is nil.
var defaultThresholds = [...]float64{0.8, 1}

// ThresholdEvent reports that a counter crossed one of its rule's
// thresholds: a charge took it from below Threshold × Limit to at or above
// it.
type ThresholdEvent struct {
	// Rule is the rule, as it was in the rule set that decided. Do not
	// modify it.
	Rule *Rule
	// Key is the counter's key: the rule and the request's values of the
	// rule's dimensions (and the calendar window). It names what crossed
	// the threshold; it comes from request data.
	Key string
	// Threshold is the fraction of Limit crossed, one of Rule.Thresholds.
	Threshold float64
	// Used is the counter's level after the charge, in the rule's unit;
	// Limit its capacity. Used may exceed Limit after a settlement, and is
	// below it when a denial reached 1.0 (WithThresholdOnDenial).
	Used, Limit int64
	// Reset is how long until the counter is back to full.
	Reset time.Duration
	// Request is the request whose check crossed the threshold, or nil when
	// a settlement did (Reservation.Settle).
	Request *Request
}

// WithThresholdHook sets the function told when a counter crosses one of
// its rule's thresholds (Rule.Thresholds). It is called on the goroutine
// of the check or settlement that crossed it, after the decision is made,
// at most once per counter key, threshold and window (a fixed window or
// calendar window: the rule's own; for other algorithms, the time the
// counter takes to refill from empty, aligned to the epoch), even across
// instances that share a store.
//
// The "fired" mark is kept in the store, on the key "<counter key>#t<threshold>"
// with a fixed window of one unit: the first instance to charge it in the
// window fires, the others find it used. That store call is made only when
// a charge crosses a threshold, never on the normal path. When it fails,
// the hook is called anyway: a duplicate alert is better than a lost one.
//
// Limiter.Reset forgets the marks of the counters it resets, so their
// thresholds fire again when crossed again in the same window. Without a
// hook nothing is tracked. While rules fail over to WithFallback (the
// local fail mode), crossings are detected on the fallback counters, which
// hold this instance's share of the limit: the event's Limit is that
// share, and the mark is kept in the fallback store, so each instance may
// fire once. Concurrency rules have no thresholds.
func WithThresholdHook(f func(ctx context.Context, e ThresholdEvent)) Option {
	return func(c *config) {
		c.thresholdHook = f
		c.marks = &markCache{seed: maphash.MakeSeed()}
	}
}

// markCache remembers the marks this limiter found charged (by itself or
// another instance) in their current window, so that a counter going up
// and down across a threshold costs one store call per window, not one
// per crossing. It is direct-mapped and fixed in size: a collision only
// costs a store call.
type markCache struct {
	seed  maphash.Seed
	mu    sync.Mutex
	slots [256]struct {
		key    string
		window int64 // index of the mark's window; valid when key != ""
	}
}

// charged reports whether the mark key is known charged in window w.
func (c *markCache) charged(key []byte, w int64) bool {
	s := &c.slots[maphash.Bytes(c.seed, key)%uint64(len(c.slots))]
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.key == string(key) && s.window == w
}

// forget drops what the cache knows of the mark key.
func (c *markCache) forget(key string) {
	s := &c.slots[maphash.String(c.seed, key)%uint64(len(c.slots))]
	c.mu.Lock()
	if s.key == key {
		s.key = ""
	}
	c.mu.Unlock()
}

// remember notes the mark key charged in window w.
func (c *markCache) remember(key string, w int64) {
	s := &c.slots[maphash.String(c.seed, key)%uint64(len(c.slots))]
	c.mu.Lock()
	s.key, s.window = key, w
	c.mu.Unlock()
}

// markWindow returns the index of the window of a mark with parameters p
// at time now.
func markWindow(p algorithms.Params, now int64) int64 {
	off := p.Offset % p.Period
	d := now - off
	w := d / p.Period
	if d < 0 && d%p.Period != 0 {
		w--
	}
	return w
}

// thresholdLevel is the counter level, in units, at which fraction f of
// capacity is reached: at least 1.
func thresholdLevel(f float64, capacity int64) int64 {
	return max(1, int64(math.Ceil(f*float64(capacity))))
}

// WithThresholdOnDenial makes a rule that denies a request for lack of
// room (an enforcing rule, not a request larger than the whole limit)
// count as having reached threshold 1.0, when 1.0 is one of its
// thresholds. With reservations a cost counter rarely lands exactly on
// its limit: the first request that no longer fits is the sign the budget
// is spent. The denial charges the same mark as an exact crossing, so 1.0
// still fires once per key and window. By default only charges cross
// thresholds.
func WithThresholdOnDenial() Option {
	return func(c *config) { c.fullOnDenial = true }
}

// checkThresholds looks for thresholds crossed by the ops of a check the
// main store decided: the charges of an allowed one, or, in a denied one
// with WithThresholdOnDenial, the enforcing rules that denied because
// they are full (see fullAt).
func (l *Limiter) checkThresholds(ctx context.Context, set *ruleSet, sc *scratch, results []algorithms.Result, now int64, req *Request, allowed bool) {
	for j, i := range sc.matched {
		l.checkThreshold(ctx, l.store, &set.rules[i], &sc.ops[j], &results[j], now, req, allowed)
	}
}

// checkFallbackThresholds is checkThresholds for the ops a check sent to
// the fallback store (the local fail mode): their counters are the
// instance's share, and so are their thresholds.
func (l *Limiter) checkFallbackThresholds(ctx context.Context, set *ruleSet, sc *scratch, results []algorithms.Result, failed []bool, now int64, req *Request, allowed bool) {
	for k, j := range sc.fbIndex {
		if failed[j] {
			continue // the fallback could not decide either
		}
		l.checkThreshold(ctx, l.cfg.fallback, &set.rules[sc.matched[j]], &sc.fallback[k], &results[j], now, req, allowed)
	}
}

// checkThreshold looks for the thresholds one op of a check crossed on
// store st.
func (l *Limiter) checkThreshold(ctx context.Context, st store.Store, r *compiledRule, op *store.Op, res *algorithms.Result, now int64, req *Request, allowed bool) {
	switch {
	case allowed && op.Cost > 0 && res.Allowed:
		l.crossings(ctx, st, r, op, res, now, req)
	case !allowed && l.cfg.fullOnDenial && !op.Shadow && res.Reason == algorithms.ReasonLimited:
		l.fullAt(ctx, st, r, op, res, now, req)
	}
}

// capacityOn returns the capacity of rule r's counter on store st: the
// rule's, or on the fallback store the instance's share that op carries.
func (l *Limiter) capacityOn(st store.Store, r *compiledRule, op *store.Op) int64 {
	if st == l.store {
		return r.capacity
	}
	return op.Params.Capacity()
}

// fullAt fires threshold 1.0 of a rule that denied a request for lack of
// room: a budget whose remainder is smaller than the next request is
// spent, although its counter may never reach the limit exactly. The mark
// is the one an exact crossing of 1.0 charges, so it fires once either
// way.
func (l *Limiter) fullAt(ctx context.Context, st store.Store, r *compiledRule, op *store.Op, res *algorithms.Result, now int64, req *Request) {
	capacity := l.capacityOn(st, r, op)
	if capacity <= 0 || op.Params.Kind == algorithms.Concurrency || r.Guard != nil {
		return
	}
	ths := r.Thresholds
	if ths == nil {
		ths = defaultThresholds[:]
	}
	for _, f := range ths {
		if f == 1 {
			l.fireThreshold(ctx, st, r, op, f, ThresholdEvent{
				Rule: &r.Rule, Key: op.Key, Threshold: f, Used: capacity - res.Remaining, Limit: capacity,
				Reset: micros(res.ResetAfter), Request: req,
			}, now)
			return
		}
	}
}

// crossings fires the hook for every threshold of r that the charge of op,
// with result res, crossed. It allocates nothing unless one was crossed.
func (l *Limiter) crossings(ctx context.Context, st store.Store, r *compiledRule, op *store.Op, res *algorithms.Result, now int64, req *Request) {
	capacity := l.capacityOn(st, r, op)
	if capacity <= 0 || op.Params.Kind == algorithms.Concurrency || r.Guard != nil {
		return
	}
	after := capacity - res.Remaining
	before := after - op.Cost
	ths := r.Thresholds
	if ths == nil {
		ths = defaultThresholds[:]
	}
	for _, f := range ths {
		level := thresholdLevel(f, capacity)
		if before < level && level <= after {
			l.fireThreshold(ctx, st, r, op, f, ThresholdEvent{
				Rule: &r.Rule, Key: op.Key, Threshold: f, Used: after, Limit: capacity,
				Reset: micros(res.ResetAfter), Request: req,
			}, now)
		}
	}
}

// fireThreshold charges the threshold's mark in store st (the one whose
// counter crossed it) and calls the hook when this caller charged it
// first in the window.
func (l *Limiter) fireThreshold(ctx context.Context, st store.Store, r *compiledRule, op *store.Op, f float64, e ThresholdEvent, now int64) {
	var buf [160]byte
	key := appendMarkKey(buf[:0], op.Key, f)
	params := markParams(op.Params)
	w := markWindow(params, now)
	main := st == l.store
	if main && l.cfg.marks.charged(key, w) {
		return // known fired in this window: no allocation, no store call
	}
	e.Key = strings.Clone(op.Key) // op.Key may live in a reused buffer
	mark := []store.Op{{Key: string(key), Params: params, Cost: 1}}
	var res [1]algorithms.Result
	err := l.apply(ctx, st, now, mark, res[:], main)
	if err != nil {
		l.cfg.logger.Warn("tollgate: threshold mark failed; firing anyway",
			slog.String("rule", r.Name), slog.Float64("threshold", f), slog.Any("error", err))
	} else {
		if main {
			l.cfg.marks.remember(mark[0].Key, w)
		}
		if !res[0].Allowed {
			return // another check or instance fired it in this window
		}
	}
	l.cfg.thresholdHook(ctx, e)
}

// appendMarkKeys appends the mark keys of every threshold of rule r on
// the counter key, for Limiter.Reset, and forgets them in the cache.
func (l *Limiter) appendMarkKeys(keys []string, r *compiledRule, counter string) []string {
	if r.capacity <= 0 || r.Algorithm == algorithms.Concurrency || r.Guard != nil {
		return keys
	}
	ths := r.Thresholds
	if ths == nil {
		ths = defaultThresholds[:]
	}
	for _, f := range ths {
		mark := string(appendMarkKey(nil, counter, f))
		l.cfg.marks.forget(mark)
		keys = append(keys, mark)
	}
	return keys
}

// appendMarkKey appends the key of the "fired" mark of threshold f of a
// counter: "<counter>#t<f>".
func appendMarkKey(dst []byte, counter string, f float64) []byte {
	dst = append(dst, counter...)
	dst = append(dst, "#t"...)
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// markParams returns the window of a threshold's mark for a counter with
// parameters p: one unit per window. Fixed windows (calendar ones
// included) keep their own window; a sliding window uses its period; a
// bucket the time it takes to refill from empty, aligned to the epoch.
func markParams(p algorithms.Params) algorithms.Params {
	m := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: p.Period}
	switch p.Kind {
	case algorithms.FixedWindow:
		m.Offset = p.Offset
	case algorithms.TokenBucket, algorithms.GCRA:
		if p.Limit > 0 && p.Capacity() > p.Limit {
			w := float64(p.Period) * float64(p.Capacity()) / float64(p.Limit)
			m.Period = int64(min(w, algorithms.MaxPeriod))
		}
	}
	return m
}

// settleThresholds looks for thresholds crossed by the positive charges of
// a settlement on store st: the main store, or the fallback for entries
// charged there.
func (r *Reservation) settleThresholds(ctx context.Context, st store.Store, ops []store.Op, results []algorithms.Result, now int64) {
	fallback := st != r.l.store
	for k := range ops {
		op := &ops[k]
		if op.Cost <= 0 {
			continue
		}
		for i := range r.entries {
			if e := &r.entries[i]; e.key == op.Key && e.fallback == fallback && e.cr != nil {
				r.l.crossings(ctx, st, e.cr, op, &results[k], now, nil)
				break
			}
		}
	}
}
