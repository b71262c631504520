package limiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/store"
)

// Errors the limiter reports.
var (
	// ErrCircuitOpen is the Decision.Err of a check that did not call the
	// store because the circuit breaker is open.
	ErrCircuitOpen = errors.New("limiter: circuit open")
	// ErrUnknownRule is returned for a rule name that is not in the set.
	ErrUnknownRule = errors.New("limiter: unknown rule")
)

// Limiter checks requests against rules, with one store call per decision.
// It is safe for concurrent use; rules can be replaced while it runs.
type Limiter struct {
	store    store.Store
	set      atomic.Pointer[ruleSet]
	now      func() int64 // µs since the epoch
	since    func() time.Duration
	cfg      config
	observed bool // the observer is not a NopObserver
	storeObs StoreObserver
	timeout  time.Duration
	breaker  breaker
	scratchs sync.Pool
}

// scratch is the per-check working memory, pooled so checks do not allocate.
type scratch struct {
	matched  []int32
	keys     []byte
	ends     []int
	ops      []store.Op
	results  []algorithms.Result
	fallback []store.Op
	fbIndex  []int
	fbRes    []algorithms.Result
}

// New returns a Limiter that keeps its counters in s and enforces rules.
func New(s store.Store, rules []Rule, opts ...Option) (*Limiter, error) {
	if s == nil {
		return nil, errors.New("limiter: nil store")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	l := &Limiter{store: s, cfg: cfg, timeout: cfg.timeout}
	_, nop := cfg.observer.(NopObserver)
	l.observed = !nop
	l.storeObs, _ = cfg.observer.(StoreObserver)
	if a, ok := cfg.observer.(attacher); ok {
		a.attach(l)
	}
	if ip, ok := s.(interface{ InProcess() bool }); ok && ip.InProcess() {
		l.timeout = 0
	}
	if cfg.clock != nil {
		clock := cfg.clock
		origin := clock()
		l.now = func() int64 { return clock().UnixMicro() }
		l.since = func() time.Duration { return clock().Sub(origin) }
	} else {
		origin := time.Now()
		originMicros := origin.UnixMicro()
		l.since = func() time.Duration { return time.Since(origin) }
		l.now = func() int64 { return originMicros + time.Since(origin).Microseconds() }
	}
	l.breaker = breaker{threshold: int64(cfg.breakerFailures), interval: cfg.breakerInterval, since: l.since}
	l.scratchs.New = func() any { return new(scratch) }
	if err := l.SetRules(rules); err != nil {
		return nil, err
	}
	return l, nil
}

// SetRules replaces the rule set atomically. Checks in flight finish with
// the old set. Counters of rules whose name and parameters did not change
// survive; a rule whose parameters changed starts with fresh counters. An
// invalid set is refused whole and the old rules stay.
func (l *Limiter) SetRules(rules []Rule) error {
	set, err := compile(rules, l.cfg.fallback != nil)
	if err != nil {
		return err
	}
	l.set.Store(set)
	return nil
}

// ValidateRules reports whether SetRules would accept rules with this
// limiter's configuration, without changing anything. Its error is a
// *RuleError naming the first bad rule.
func (l *Limiter) ValidateRules(rules []Rule) error {
	_, err := compile(rules, l.cfg.fallback != nil)
	return err
}

// Rules returns a copy of the current rules.
func (l *Limiter) Rules() []Rule {
	set := l.set.Load()
	out := make([]Rule, len(set.rules))
	for i := range set.rules {
		out[i] = set.rules[i].Rule
	}
	return out
}

// SetMode changes the mode of the rule named name (enforce, shadow, off),
// keeping its counters.
func (l *Limiter) SetMode(name string, mode Mode) error {
	if mode > Off {
		return fmt.Errorf("%w: unknown mode %d", ErrInvalidRule, mode)
	}
	for {
		old := l.set.Load()
		rules := make([]Rule, len(old.rules))
		found := false
		for i := range old.rules {
			rules[i] = old.rules[i].Rule
			if rules[i].Name == name {
				rules[i].Mode = mode
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%w %q", ErrUnknownRule, name)
		}
		set, err := compile(rules, l.cfg.fallback != nil)
		if err != nil {
			return err
		}
		if l.set.CompareAndSwap(old, set) {
			return nil
		}
	}
}

// CircuitOpen reports whether the circuit breaker is open.
func (l *Limiter) CircuitOpen() bool { return l.breaker.open() }

// Check decides whether req may proceed, charging every matching rule in
// one store call, all or nothing. A denial is a Decision, not an error.
// When the Decision carries a Reservation, the caller must Settle or
// Cancel it once the request is done.
func (l *Limiter) Check(ctx context.Context, req *Request) (d Decision) {
	// d is the result itself: decide fills it in place, with no copy.
	l.decide(ctx, req, &d, false)
	if !d.Allowed && l.cfg.downshift != nil {
		l.downshift(ctx, req, &d)
	}
	if l.observed {
		l.cfg.observer.Decided(ctx, req, d)
	}
	return d
}

// Peek reports what Check would decide for req, changing nothing: every
// matching rule is evaluated for one more unit. It is the GetLimit query:
// Limiting.Remaining and Limiting.Reset are the tightest rule's.
func (l *Limiter) Peek(ctx context.Context, req *Request) Decision {
	var d Decision
	l.decide(ctx, req, &d, true)
	return d
}

// Reset forgets the counters of every rule that matches req, for req's
// dimensions, and, with WithThresholdHook, their thresholds' "fired"
// marks: a counter reset mid-window alerts again when it crosses a
// threshold again.
func (l *Limiter) Reset(ctx context.Context, req *Request) error {
	set := l.set.Load()
	sc := l.scratchs.Get().(*scratch)
	defer l.scratchs.Put(sc)
	sc.matched = set.match(req, sc.matched[:0])
	now := l.now()
	keys := make([]string, 0, len(sc.matched))
	for _, i := range sc.matched {
		r := &set.rules[i]
		key := string(r.appendKey(nil, req, now))
		keys = append(keys, key)
		if l.cfg.thresholdHook != nil {
			keys = l.appendMarkKeys(keys, r, key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return l.store.Reset(ctx, keys...)
}

// appendKey appends the counter key of the rule for req at time now.
func (c *compiledRule) appendKey(dst []byte, req *Request, now int64) []byte {
	dst = dimensions.AppendKey(dst, c.prefix, c.By, &req.Facts)
	if c.Calendar != NoCalendar {
		_, start := c.calendarWindow(now)
		dst = append(dst, '@')
		dst = strconv.AppendInt(dst, start/1_000_000, 10)
	}
	return dst
}

// paramsAt returns the rule's parameters at time now.
func (c *compiledRule) paramsAt(now int64) algorithms.Params {
	if c.Calendar != NoCalendar {
		p, _ := c.calendarWindow(now)
		return p
	}
	return c.params
}

// checkCost is what the rule charges at check time.
func (c *compiledRule) checkCost(req *Request) int64 {
	if c.delayed {
		return 0
	}
	return req.Estimate.amount(c.Unit)
}

func (l *Limiter) decide(ctx context.Context, req *Request, d *Decision, peek bool) {
	set := l.set.Load()
	sc := l.scratchs.Get().(*scratch)
	defer l.scratchs.Put(sc)
	sc.matched = set.match(req, sc.matched[:0])
	if len(sc.matched) == 0 {
		d.Allowed = true
		l.recordAside(ctx, req, d, peek)
		return
	}
	if set.guards && l.guard(set, sc, req, d) {
		l.recordAside(ctx, req, d, peek)
		return
	}
	now := l.now()
	sc.keys, sc.ends = sc.keys[:0], sc.ends[:0]
	for _, i := range sc.matched {
		sc.keys = set.rules[i].appendKey(sc.keys, req, now)
		sc.ends = append(sc.ends, len(sc.keys))
	}
	if cap(sc.ops) < len(sc.matched) {
		sc.ops = make([]store.Op, len(sc.matched), 2*len(sc.matched))
	}
	sc.ops = sc.ops[:len(sc.matched)]
	start := 0
	for j, i := range sc.matched {
		// Field by field, in place: an Op built aside and copied in would
		// be read back before its stores are done.
		r := &set.rules[i]
		end := sc.ends[j]
		op := &sc.ops[j]
		op.Key = unsafe.String(&sc.keys[start], end-start)
		if r.Calendar != NoCalendar {
			op.Params = r.paramsAt(now)
		} else {
			op.Params = r.params
		}
		op.Cost = 0
		if !peek {
			op.Cost = r.checkCost(req)
		}
		op.Mode = algorithms.Normal
		op.Shadow = r.Mode == Shadow
		start = end
	}
	rec := l.recordCheck(sc, req, now, peek)
	if cap(sc.results) < len(sc.ops) {
		sc.results = make([]algorithms.Result, len(sc.ops))
	}
	results := sc.results[:len(sc.ops)]
	clear(results)
	var failed []bool
	if err := l.apply(ctx, l.store, now, sc.ops, results, true); err != nil {
		d.Err = err
		failed = l.failOver(ctx, set, sc, now, results)
	}
	l.assemble(set, sc, results, failed, d)
	if d.Allowed && !peek {
		d.Reservation = l.reserve(set, sc, results, failed)
	}
	if l.cfg.thresholdHook != nil && !peek {
		if d.Err == nil {
			l.checkThresholds(ctx, set, sc, results, now, req, d.Allowed)
		} else if len(sc.fbIndex) > 0 {
			l.checkFallbackThresholds(ctx, set, sc, results, failed, now, req, d.Allowed)
		}
	}
	l.recordOutcome(ctx, d, rec, true)
}

// guard runs the guard rules among the matched ones, removing them from
// sc.matched. It reports whether a guard denied the request, in which case
// d holds the decision and no counter is touched.
func (l *Limiter) guard(set *ruleSet, sc *scratch, req *Request, d *Decision) bool {
	n := 0
	denied := false
	for _, i := range sc.matched {
		r := &set.rules[i]
		if r.Guard == nil {
			sc.matched[n] = i
			n++
			continue
		}
		err := r.Guard(req)
		if err == nil {
			continue
		}
		rr := RuleResult{Rule: &r.Rule, Reason: algorithms.ReasonExceedsCapacity, Err: err}
		d.add(rr)
		if r.Mode == Shadow {
			d.ShadowDenied = true
			continue
		}
		if !denied {
			denied = true
			d.Limiting = rr
		}
	}
	sc.matched = sc.matched[:n]
	if denied {
		d.Allowed = false
		return true
	}
	if n == 0 {
		d.Allowed = true
		return true
	}
	return false
}

// apply calls a store with the limiter's deadline, and (for the main
// store) through the circuit breaker.
func (l *Limiter) apply(ctx context.Context, s store.Store, now int64, ops []store.Op, results []algorithms.Result, main bool) error {
	if main && !l.breaker.allow() {
		return ErrCircuitOpen
	}
	if l.timeout > 0 && main {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	var start time.Time
	if main && l.storeObs != nil {
		start = time.Now()
	}
	err := s.Apply(ctx, now, ops, results)
	if main && l.storeObs != nil {
		l.storeObs.StoreCalled(ctx, time.Since(start), err)
	}
	if main && (err == nil || !errors.Is(err, store.ErrInvalidOp) && !errors.Is(err, store.ErrFull) && !errors.Is(err, context.Canceled)) {
		// A partial failure (one node of a Cluster) means the store answers:
		// it must not open the breaker for the keys of the healthy nodes.
		if l.breaker.record(err == nil || errors.Is(err, store.ErrPartial)) {
			if l.breaker.open() {
				l.cfg.logger.Warn("tollgate: store failing, circuit opened", slog.Any("error", err))
			} else {
				l.cfg.logger.Info("tollgate: store recovered, circuit closed")
			}
		}
	}
	if err != nil && main {
		l.cfg.observer.StoreFailed(ctx, err)
	}
	return err
}

// failOver fills results from each rule's fail mode after the store could
// not decide. It returns which results came from a fail mode other than
// local enforcement (nothing was charged for them).
func (l *Limiter) failOver(ctx context.Context, set *ruleSet, sc *scratch, now int64, results []algorithms.Result) []bool {
	failed := make([]bool, len(sc.ops))
	sc.fallback, sc.fbIndex = sc.fallback[:0], sc.fbIndex[:0]
	denied := false // an enforcing rule fails closed: the decision is a denial
	for j, i := range sc.matched {
		r := &set.rules[i]
		mode := r.OnStoreError
		if mode == FailDefault {
			mode = l.cfg.failMode
		}
		switch mode {
		case FailLocal:
			op := sc.ops[j]
			op.Params.Limit = divCeil(op.Params.Limit, l.cfg.instances)
			op.Params.Burst = divCeil(op.Params.Burst, l.cfg.instances)
			sc.fallback = append(sc.fallback, op)
			sc.fbIndex = append(sc.fbIndex, j)
			continue
		case FailDeny:
			results[j] = algorithms.Result{Reason: algorithms.ReasonLimited}
			denied = denied || r.Mode != Shadow
		default:
			results[j] = algorithms.Result{Allowed: true, Remaining: r.capacity}
		}
		failed[j] = true
	}
	if len(sc.fallback) == 0 {
		return failed
	}
	if cap(sc.fbRes) < len(sc.fallback) {
		sc.fbRes = make([]algorithms.Result, len(sc.fallback))
	}
	fbRes := sc.fbRes[:len(sc.fallback)]
	if denied {
		// All or nothing: a denied decision charges no counter, the
		// fallback's included; its rules are still evaluated.
		for k := range sc.fallback {
			sc.fallback[k].Cost = 0
		}
	}
	if err := l.apply(ctx, l.cfg.fallback, now, sc.fallback, fbRes, false); err != nil {
		// The fallback could not decide either: admit, as failing open.
		for _, j := range sc.fbIndex {
			results[j] = algorithms.Result{Allowed: true, Remaining: set.rules[sc.matched[j]].capacity}
			failed[j] = true
		}
		return failed
	}
	for k, j := range sc.fbIndex {
		results[j] = fbRes[k]
	}
	return failed
}

// micros converts µs to a Duration, saturating instead of overflowing
// (a forced charge can push a reset centuries away).
func micros(us int64) time.Duration {
	const most = math.MaxInt64 / int64(time.Microsecond)
	if us > most {
		return math.MaxInt64
	}
	return time.Duration(us) * time.Microsecond
}

func divCeil(a, b int64) int64 {
	if a <= 0 {
		return a
	}
	return (a + b - 1) / b
}

// assemble turns store results into the decision.
func (l *Limiter) assemble(set *ruleSet, sc *scratch, results []algorithms.Result, failed []bool, d *Decision) {
	denied := false
	limiting := -1
	for j, i := range sc.matched {
		r := &set.rules[i]
		rr := d.next()
		rr.set(r, &results[j], failed != nil && failed[j])
		if r.Mode == Shadow {
			d.ShadowDenied = d.ShadowDenied || !rr.Allowed
			continue
		}
		if limiting < 0 {
			limiting, denied = j, !rr.Allowed
			continue
		}
		cur := d.resultPtr(limiting)
		switch {
		case !rr.Allowed && (!denied || tighterDenial(rr, cur)):
			denied, limiting = true, j
		case rr.Allowed && !denied && tighterAllowance(rr, cur):
			limiting = j
		}
	}
	d.Allowed = !denied
	if limiting >= 0 {
		// Written again rather than copied: a copy would read back the
		// result just stored field by field.
		d.Limiting.set(&set.rules[sc.matched[limiting]], &results[limiting], failed != nil && failed[limiting])
	}
	if denied {
		d.RetryAfter = d.Limiting.RetryAfter
	}
}

// set writes the result of rule r from its store result res, field by
// field (a RuleResult literal would be built aside and copied).
func (rr *RuleResult) set(r *compiledRule, res *algorithms.Result, storeError bool) {
	rr.Rule = &r.Rule
	rr.Allowed = res.Allowed
	rr.Reason = res.Reason
	rr.Limit = r.capacity
	rr.Remaining = res.Remaining
	rr.RetryAfter = micros(res.RetryAfter)
	rr.Reset = micros(res.ResetAfter)
	rr.StoreError = storeError
	rr.Err = nil
}

func (d *Decision) resultPtr(i int) *RuleResult {
	if i < maxInline {
		return &d.results[i]
	}
	return &d.more[i-maxInline]
}
