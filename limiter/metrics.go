package limiter

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the limiter's metrics.
const ScopeName = "github.com/tollgate-go/tollgate/limiter"

// Attribute keys of the limiter's metrics and span attributes. Their
// values never come from request data: rule names and fixed words only.
const (
	// AttrRule is the rule's name.
	AttrRule = attribute.Key("tollgate.rule")
	// AttrResult is a rule's (or, on spans, the decision's) result:
	// allowed, limited, shadow_limited or error.
	AttrResult = attribute.Key("tollgate.result")
	// AttrRemaining is, on spans, what the tightest rule has left.
	AttrRemaining = attribute.Key("tollgate.remaining")
	// AttrRetryAfter is, on spans of denied requests, the wait in seconds.
	AttrRetryAfter = attribute.Key("tollgate.retry_after")
	// AttrTokenType is the OpenTelemetry GenAI attribute: input or output.
	AttrTokenType = attribute.Key("gen_ai.token.type")
	// AttrErrorType is the OpenTelemetry error.type attribute: timeout (a
	// store call past its deadline) or _OTHER; absent on success.
	AttrErrorType = attribute.Key("error.type")
)

// The values of AttrResult.
const (
	ResultAllowed       = "allowed"
	ResultLimited       = "limited"
	ResultShadowLimited = "shadow_limited"
	ResultError         = "error"
)

var resultNames = [...]string{ResultAllowed, ResultLimited, ResultShadowLimited, ResultError}

const (
	resAllowed = iota
	resLimited
	resShadowLimited
	resError
)

// storeDurationBuckets are the bucket boundaries, in seconds, of
// tollgate.store.duration: from 10µs (an in-process store) to 1s.
var storeDurationBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// MetricsOption configures Metrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct {
	provider metric.MeterProvider
	spans    bool
}

// WithMeterProvider sets the MeterProvider the instruments come from; the
// default is the global one (otel.GetMeterProvider) at NewMetrics time.
func WithMeterProvider(mp metric.MeterProvider) MetricsOption {
	return func(c *metricsConfig) {
		if mp != nil {
			c.provider = mp
		}
	}
}

// WithoutSpanAttributes stops Metrics from adding decision attributes to
// the active span; by default it adds them when the span is recording.
func WithoutSpanAttributes() MetricsOption {
	return func(c *metricsConfig) { c.spans = false }
}

// Metrics is an Observer that records OpenTelemetry metrics of the
// limiters it is passed to (WithObserver), and adds decision attributes to
// the active span. Instruments are created once, by NewMetrics, and
// attribute sets once per rule name, so recording a decision allocates
// nothing. Attribute values are rule names and fixed words, never request
// data, so the number of series is bounded by rules × results. Decision
// counts and active reservations are atomic counters reported when the
// reader collects (observable instruments): a check costs an atomic add
// per rule and one histogram measurement of the store call. See
// METRICS.md for the instruments.
//
// Metrics is safe for concurrent use. One Metrics may observe several
// limiters; its circuit gauge then reports 1 when any circuit is open.
type Metrics struct {
	decisions     metric.Int64ObservableCounter
	storeDuration metric.Float64Histogram
	tokens        metric.Int64Counter
	cost          metric.Int64Counter
	usageMissing  metric.Int64Counter
	reservations  metric.Int64ObservableUpDownCounter
	reloads       metric.Int64Counter
	circuit       metric.Int64ObservableGauge
	utilization   metric.Float64ObservableGauge
	registration  metric.Registration
	spans         bool

	none                             []metric.AddOption
	noneObs                          []metric.ObserveOption
	storeOK, storeTimeout, storeElse []metric.RecordOption
	reloadOK, reloadFailed           []metric.AddOption

	active   atomic.Int64                            // reservations not yet settled
	rules    atomic.Pointer[map[string]*ruleMetrics] // copy on write
	mu       sync.Mutex                              // serializes writers of rules; guards limiters
	limiters []*Limiter
}

// ruleMetrics are the precomputed attribute sets of one rule name, its
// decision counts, and the highest budget utilization seen since the last
// collection.
type ruleMetrics struct {
	decisions     [len(resultNames)]atomic.Int64
	results       [len(resultNames)][]metric.ObserveOption
	input, output []metric.AddOption
	rule          []metric.AddOption
	observe       []metric.ObserveOption
	utilization   atomic.Uint64 // seenBit | Float64bits(utilization); 0: none seen
}

var (
	_ Observer      = (*Metrics)(nil)
	_ StoreObserver = (*Metrics)(nil)
)

// NewMetrics creates the instruments and returns Metrics to pass to
// limiter.New with WithObserver. It fails only if the MeterProvider
// refuses an instrument.
func NewMetrics(opts ...MetricsOption) (*Metrics, error) {
	cfg := metricsConfig{spans: true}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.provider == nil {
		cfg.provider = otel.GetMeterProvider()
	}
	meter := cfg.provider.Meter(ScopeName)
	m := &Metrics{spans: cfg.spans}
	var err, e error
	m.decisions, e = meter.Int64ObservableCounter("tollgate.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Rule evaluations of checks, by rule and result."))
	err = errors.Join(err, e)
	m.storeDuration, e = meter.Float64Histogram("tollgate.store.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to the main store."),
		metric.WithExplicitBucketBoundaries(storeDurationBuckets...))
	err = errors.Join(err, e)
	m.tokens, e = meter.Int64Counter("tollgate.tokens.settled", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens settled on token rules, by rule and token type."))
	err = errors.Join(err, e)
	m.cost, e = meter.Int64Counter("tollgate.cost.settled", metric.WithUnit("{microunit}"),
		metric.WithDescription("Cost settled on cost rules (budgets), in micro-units of currency, by rule."))
	err = errors.Join(err, e)
	m.usageMissing, e = meter.Int64Counter("tollgate.usage.missing", metric.WithUnit("{response}"),
		metric.WithDescription("Responses that carried no usage, so the estimate was charged, by rule."))
	err = errors.Join(err, e)
	m.reservations, e = meter.Int64ObservableUpDownCounter("tollgate.reservations.active", metric.WithUnit("{reservation}"),
		metric.WithDescription("Reservations made by checks and not yet settled or cancelled."))
	err = errors.Join(err, e)
	m.reloads, e = meter.Int64Counter("tollgate.config.reloads", metric.WithUnit("{reload}"),
		metric.WithDescription("Attempts to replace the rules; error.type is set on failures."))
	err = errors.Join(err, e)
	m.circuit, e = meter.Int64ObservableGauge("tollgate.store.circuit.open", metric.WithUnit("1"),
		metric.WithDescription("1 while the store circuit breaker is open, else 0."))
	err = errors.Join(err, e)
	m.utilization, e = meter.Float64ObservableGauge("tollgate.budget.utilization", metric.WithUnit("1"),
		metric.WithDescription("Highest used share of a cost rule's limit among its keys since the last collection, by rule."))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	m.registration, err = meter.RegisterCallback(m.observe, m.decisions, m.reservations, m.circuit, m.utilization)
	if err != nil {
		return nil, err
	}
	m.none = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet())}
	m.noneObs = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet())}
	m.storeOK = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet())}
	m.storeTimeout = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(AttrErrorType.String("timeout")))}
	m.storeElse = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(AttrErrorType.String("_OTHER")))}
	m.reloadOK = m.none
	m.reloadFailed = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrErrorType.String("_OTHER")))}
	empty := map[string]*ruleMetrics{}
	m.rules.Store(&empty)
	return m, nil
}

// Close unregisters the observable instruments' callback, so that the
// MeterProvider no longer holds m and its limiters.
func (m *Metrics) Close() error { return m.registration.Unregister() }

func (m *Metrics) attach(l *Limiter) {
	m.mu.Lock()
	m.limiters = append(m.limiters, l)
	m.mu.Unlock()
}

// forRule returns the attribute sets of the rule named name, creating them
// on first use.
func (m *Metrics) forRule(name string) *ruleMetrics {
	if rm := (*m.rules.Load())[name]; rm != nil {
		return rm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.rules.Load()
	if rm := old[name]; rm != nil {
		return rm
	}
	rule := AttrRule.String(name)
	rm := &ruleMetrics{}
	for i, r := range resultNames {
		rm.results[i] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(rule, AttrResult.String(r)))}
	}
	rm.input = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(rule, AttrTokenType.String("input")))}
	rm.output = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(rule, AttrTokenType.String("output")))}
	set := attribute.NewSet(rule)
	rm.rule = []metric.AddOption{metric.WithAttributeSet(set)}
	rm.observe = []metric.ObserveOption{metric.WithAttributeSet(set)}
	rules := make(map[string]*ruleMetrics, len(old)+1)
	for k, v := range old {
		rules[k] = v
	}
	rules[name] = rm
	m.rules.Store(&rules)
	return rm
}

func ruleResult(r *RuleResult) int {
	switch {
	case r.StoreError:
		return resError
	case r.Allowed:
		return resAllowed
	case r.Rule.Mode == Shadow:
		return resShadowLimited
	}
	return resLimited
}

// Decided counts every rule's result, notes budget utilization, counts a
// new reservation, and adds the decision to the active span.
func (m *Metrics) Decided(ctx context.Context, _ *Request, d Decision) {
	for i := range d.Len() {
		r := d.resultPtr(i)
		if r.Rule == nil {
			continue
		}
		rm := m.forRule(r.Rule.Name)
		rm.decisions[ruleResult(r)].Add(1)
		if r.Rule.Unit == Cost && r.Limit > 0 && !r.StoreError && r.Rule.Guard == nil {
			rm.noteUtilization(float64(r.Limit-r.Remaining) / float64(r.Limit))
		}
	}
	if d.Reservation != nil {
		m.active.Add(1)
	}
	if m.spans {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			annotate(span, &d)
		}
	}
}

// seenBit marks a utilization as seen. Utilizations are not negative, so
// their bits order as they do, and the sign bit is free.
const seenBit = 1 << 63

// noteUtilization raises the rule's highest utilization to u.
func (rm *ruleMetrics) noteUtilization(u float64) {
	bits := seenBit | math.Float64bits(max(u, 0))
	for {
		old := rm.utilization.Load()
		if old >= bits || rm.utilization.CompareAndSwap(old, bits) {
			return
		}
	}
}

// annotate adds the decision's attributes to span: the tightest rule, the
// result, what is left and, on a denial, the wait.
func annotate(span trace.Span, d *Decision) {
	if d.Limiting.Rule == nil {
		return
	}
	result := ResultAllowed
	switch {
	case d.Limiting.StoreError:
		result = ResultError
	case !d.Allowed:
		result = ResultLimited
	case d.ShadowDenied:
		result = ResultShadowLimited
	}
	span.SetAttributes(AttrRule.String(d.Limiting.Rule.Name), AttrResult.String(result),
		AttrRemaining.Int64(d.Limiting.Remaining))
	if !d.Allowed {
		span.SetAttributes(AttrRetryAfter.Float64(d.RetryAfter.Seconds()))
	}
}

// Settled counts the settled tokens and cost of each rule of the
// reservation, and the reservation's end. A cancel settles nothing.
func (m *Metrics) Settled(ctx context.Context, res *Reservation, actual Usage, _ error) {
	if res == nil {
		return
	}
	m.active.Add(-1)
	for i := range res.entries {
		e := &res.entries[i]
		var in, out int64
		switch e.unit {
		case Tokens:
			in, out = actual.InputTokens, actual.OutputTokens
		case InputTokens:
			in = actual.InputTokens
		case OutputTokens:
			out = actual.OutputTokens
		case Cost:
			if actual.Cost > 0 {
				m.cost.Add(ctx, actual.Cost, m.forRule(e.rule).rule...)
			}
			continue
		default:
			continue
		}
		rm := m.forRule(e.rule)
		if in > 0 {
			m.tokens.Add(ctx, in, rm.input...)
		}
		if out > 0 {
			m.tokens.Add(ctx, out, rm.output...)
		}
	}
}

// StoreFailed does nothing: failed calls are in tollgate.store.duration
// with error.type, and in the results of tollgate.decisions.
func (m *Metrics) StoreFailed(context.Context, error) {}

// StoreCalled records the duration of a store call.
func (m *Metrics) StoreCalled(ctx context.Context, elapsed time.Duration, err error) {
	opts := m.storeOK
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		opts = m.storeTimeout
	default:
		opts = m.storeElse
	}
	m.storeDuration.Record(ctx, elapsed.Seconds(), opts...)
}

// UsageMissing counts a response that carried no usage, so that its
// reservation was settled to the estimate: once for each token or cost
// rule of res, or once without a rule when res has none. Adapters call it
// (httplimit's charge hook sees the UsageMissing outcome).
func (m *Metrics) UsageMissing(ctx context.Context, res *Reservation) {
	counted := false
	if res != nil {
		for i := range res.entries {
			if e := &res.entries[i]; e.unit != Requests {
				m.usageMissing.Add(ctx, 1, m.forRule(e.rule).rule...)
				counted = true
			}
		}
	}
	if !counted {
		m.usageMissing.Add(ctx, 1, m.none...)
	}
}

// ConfigReloaded counts an attempt to replace the rules, failed when err
// is not nil. Call it from policy's reload hook:
//
//	policy.WithReloadHook(func(e policy.ReloadEvent) { m.ConfigReloaded(ctx, e.Err) })
func (m *Metrics) ConfigReloaded(ctx context.Context, err error) {
	if err != nil {
		m.reloads.Add(ctx, 1, m.reloadFailed...)
		return
	}
	m.reloads.Add(ctx, 1, m.reloadOK...)
}

// observe reports the observable instruments: the decision counts, the
// active reservations, the circuit state of the attached limiters, and
// each budget's highest utilization since the last collection (which it
// resets).
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	o.ObserveInt64(m.reservations, m.active.Load(), m.noneObs...)
	m.mu.Lock()
	limiters := m.limiters
	m.mu.Unlock()
	if len(limiters) > 0 {
		open := int64(0)
		for _, l := range limiters {
			if l.CircuitOpen() {
				open = 1
			}
		}
		o.ObserveInt64(m.circuit, open)
	}
	for _, rm := range *m.rules.Load() {
		for i := range rm.decisions {
			if n := rm.decisions[i].Load(); n > 0 {
				o.ObserveInt64(m.decisions, n, rm.results[i]...)
			}
		}
		if bits := rm.utilization.Swap(0); bits != 0 {
			o.ObserveFloat64(m.utilization, math.Float64frombits(bits&^seenBit), rm.observe...)
		}
	}
	return nil
}
