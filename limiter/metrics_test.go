package limiter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/store/memory"
)

// newMetered returns a limiter observed by Metrics that record into a
// real SDK MeterProvider, and the reader to collect them.
func newMetered(t *testing.T, rules []Rule, opts ...Option) (*Limiter, *refStore, *fakeClock, *sdkmetric.ManualReader, *Metrics) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(ctx) })
	m, err := NewMetrics(WithMeterProvider(mp))
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	l, s, clk := newTestLimiter(t, rules, append([]Option{WithObserver(m)}, opts...)...)
	return l, s, clk, reader, m
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// attrs renders an attribute set as "k=v,k=v", sorted.
func attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// sums returns the points of an int64 sum by attribute set.
func sums(t *testing.T, data map[string]metricdata.Aggregation, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	a, ok := data[name]
	if !ok {
		return out
	}
	s, ok := a.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want Sum[int64]", name, a)
	}
	for _, p := range s.DataPoints {
		out[attrs(p.Attributes)] = p.Value
	}
	return out
}

func wantPoints[V comparable](t *testing.T, name string, got, want map[string]V) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got  %v\n want %v", name, got, want)
	}
}

func TestMetricsCountDecisionsByRuleAndResult(t *testing.T) {
	l, _, _, reader, _ := newMetered(t, []Rule{
		{Name: "per-user", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute, By: byUser()},
		{Name: "watch", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, By: byUser(), Mode: Shadow},
	})
	for range 3 {
		l.Check(ctx, user("alice"))
	}
	wantPoints(t, "tollgate.decisions", sums(t, collect(t, reader), "tollgate.decisions"), map[string]int64{
		"tollgate.result=allowed,tollgate.rule=per-user":     2,
		"tollgate.result=limited,tollgate.rule=per-user":     1,
		"tollgate.result=allowed,tollgate.rule=watch":        1,
		"tollgate.result=shadow_limited,tollgate.rule=watch": 2,
	})
}

func TestMetricsStoreErrorsAndCircuitGauge(t *testing.T) {
	l, s, _, reader, _ := newMetered(t, []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute}},
		WithCircuitBreaker(2, time.Hour))
	l.Check(ctx, user("a"))
	data := collect(t, reader)
	if g := data["tollgate.store.circuit.open"].(metricdata.Gauge[int64]); len(g.DataPoints) != 1 || g.DataPoints[0].Value != 0 {
		t.Errorf("circuit gauge with a healthy store: %+v, want one point of 0", g.DataPoints)
	}
	s.setFailing(errDown)
	for range 3 { // 2 failures open the circuit; the 3rd check does not call the store
		l.Check(ctx, user("a"))
	}
	data = collect(t, reader)
	if g := data["tollgate.store.circuit.open"].(metricdata.Gauge[int64]); len(g.DataPoints) != 1 || g.DataPoints[0].Value != 1 {
		t.Errorf("circuit gauge after failures: %+v, want one point of 1", g.DataPoints)
	}
	wantPoints(t, "tollgate.decisions", sums(t, data, "tollgate.decisions"), map[string]int64{
		"tollgate.result=allowed,tollgate.rule=r": 1,
		"tollgate.result=error,tollgate.rule=r":   3,
	})
	h := data["tollgate.store.duration"].(metricdata.Histogram[float64])
	counts := map[string]uint64{}
	for _, p := range h.DataPoints {
		counts[attrs(p.Attributes)] = p.Count
	}
	wantPoints(t, "tollgate.store.duration counts", counts, map[string]uint64{"": 1, "error.type=_OTHER": 2})
}

func TestMetricsStoreDurationHistogramBuckets(t *testing.T) {
	l, _, _, reader, _ := newMetered(t, []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute}})
	for range 5 {
		l.Check(ctx, user("a"))
	}
	data := collect(t, reader)
	h, ok := data["tollgate.store.duration"].(metricdata.Histogram[float64])
	if !ok || len(h.DataPoints) != 1 {
		t.Fatalf("tollgate.store.duration: %#v, want a histogram with one point", data["tollgate.store.duration"])
	}
	p := h.DataPoints[0]
	if p.Count != 5 || !slices.Equal(p.Bounds, storeDurationBuckets) {
		t.Errorf("count=%d bounds=%v, want 5 and %v", p.Count, p.Bounds, storeDurationBuckets)
	}
	if p.Sum <= 0 || p.Sum > 1 {
		t.Errorf("sum %vs of 5 in-memory calls, want in (0, 1]", p.Sum)
	}
}

func TestMetricsSettledTokensCostAndActiveReservations(t *testing.T) {
	l, _, _, reader, _ := newMetered(t, []Rule{
		{Name: "tpm", Algorithm: algorithms.TokenBucket, Limit: 100_000, Period: time.Minute, Unit: Tokens, By: byUser()},
		{Name: "out", Algorithm: algorithms.FixedWindow, Limit: 100_000, Period: time.Hour, Unit: OutputTokens, By: byUser()},
		{Name: "budget", Algorithm: algorithms.FixedWindow, Limit: 5_000_000, Calendar: Day, Unit: Cost, By: byUser()},
		{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute, By: byUser()},
	})
	req := user("a")
	req.Estimate = Usage{InputTokens: 100, OutputTokens: 500, Cost: 3000}
	d1, d2 := l.Check(ctx, req), l.Check(ctx, req)
	if d1.Reservation == nil || d2.Reservation == nil {
		t.Fatal("no reservation")
	}
	if got := sums(t, collect(t, reader), "tollgate.reservations.active"); got[""] != 2 {
		t.Errorf("active reservations after 2 checks: %v, want 2", got)
	}
	if err := d1.Reservation.Settle(ctx, Usage{InputTokens: 100, OutputTokens: 42, Cost: 1200}); err != nil {
		t.Fatal(err)
	}
	if err := d2.Reservation.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	data := collect(t, reader)
	wantPoints(t, "tollgate.reservations.active", sums(t, data, "tollgate.reservations.active"), map[string]int64{"": 0})
	wantPoints(t, "tollgate.tokens.settled", sums(t, data, "tollgate.tokens.settled"), map[string]int64{
		"gen_ai.token.type=input,tollgate.rule=tpm":  100,
		"gen_ai.token.type=output,tollgate.rule=tpm": 42,
		"gen_ai.token.type=output,tollgate.rule=out": 42,
	})
	wantPoints(t, "tollgate.cost.settled", sums(t, data, "tollgate.cost.settled"), map[string]int64{"tollgate.rule=budget": 1200})
}

func TestMetricsUsageMissingAndReloads(t *testing.T) {
	l, _, _, reader, m := newMetered(t, []Rule{
		{Name: "tpm", Algorithm: algorithms.TokenBucket, Limit: 100_000, Period: time.Minute, Unit: Tokens},
		{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute},
	})
	req := user("a")
	req.Estimate.InputTokens = 10
	d := l.Check(ctx, req)
	m.UsageMissing(ctx, d.Reservation)
	m.UsageMissing(ctx, nil)
	m.ConfigReloaded(ctx, nil)
	m.ConfigReloaded(ctx, errors.New("policy: /rules/0/limit: bad"))
	m.ConfigReloaded(ctx, nil)
	data := collect(t, reader)
	wantPoints(t, "tollgate.usage.missing", sums(t, data, "tollgate.usage.missing"), map[string]int64{"": 1, "tollgate.rule=tpm": 1})
	wantPoints(t, "tollgate.config.reloads", sums(t, data, "tollgate.config.reloads"), map[string]int64{"": 2, "error.type=_OTHER": 1})
}

func TestMetricsBudgetUtilization(t *testing.T) {
	l, _, _, reader, _ := newMetered(t, []Rule{
		{Name: "team-budget", Algorithm: algorithms.FixedWindow, Limit: 1_000_000, Calendar: Month, Unit: Cost, By: []dimensions.Dimension{dimensions.Tenant}},
	})
	check := func(tenant string, cost int64) {
		t.Helper()
		if d := l.Check(ctx, &Request{Facts: dimensions.Facts{Tenant: tenant}, Estimate: Usage{Cost: cost}}); !d.Allowed {
			t.Fatalf("%s: denied", tenant)
		}
	}
	check("a", 250_000)
	check("b", 800_000)
	check("a", 250_000)
	gauge := func() map[string]float64 {
		out := map[string]float64{}
		if g, ok := collect(t, reader)["tollgate.budget.utilization"].(metricdata.Gauge[float64]); ok {
			for _, p := range g.DataPoints {
				out[attrs(p.Attributes)] = p.Value
			}
		}
		return out
	}
	wantPoints(t, "utilization", gauge(), map[string]float64{"tollgate.rule=team-budget": 0.8})
	wantPoints(t, "utilization with no check since", gauge(), map[string]float64{})
	check("a", 100_000)
	wantPoints(t, "utilization", gauge(), map[string]float64{"tollgate.rule=team-budget": 0.6})
}

func TestMetricsCardinalityIsRulesTimesResults(t *testing.T) {
	rules := []Rule{
		{Name: "per-user", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, By: byUser()},
		{Name: "per-ip", Algorithm: algorithms.FixedWindow, Limit: 3, Period: time.Minute, By: []dimensions.Dimension{dimensions.ClientIP}},
	}
	l, _, _, reader, _ := newMetered(t, rules)
	for i := range 2000 {
		req := &Request{Facts: dimensions.Facts{User: fmt.Sprintf("user-%d", i%1000), ClientIP: fmt.Sprintf("10.0.%d.%d", i/256%8, i%256)}}
		l.Check(ctx, req)
	}
	got := sums(t, collect(t, reader), "tollgate.decisions")
	if len(got) > len(rules)*len(resultNames) {
		t.Errorf("%d series for %d rules: %v", len(got), len(rules), got)
	}
	for k := range got {
		if strings.Contains(k, "user-") || strings.Contains(k, "10.0.") {
			t.Errorf("series %q carries request data", k)
		}
	}
	var total int64
	for _, v := range got {
		total += v
	}
	if total != 2*2000 {
		t.Errorf("%d rule results counted, want %d", total, 2*2000)
	}
}

func TestMetricsAnnotateTheActiveSpan(t *testing.T) {
	l, _, _, _, _ := newMetered(t, []Rule{{Name: "per-user", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, By: byUser()}})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(ctx) }()
	for range 2 {
		sctx, span := tp.Tracer("test").Start(ctx, "request")
		l.Check(sctx, user("alice"))
		span.End()
	}
	l.Check(ctx, user("bob")) // no span: nothing to annotate, nothing breaks
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	want := []string{
		"tollgate.remaining=0,tollgate.result=allowed,tollgate.rule=per-user",
		"tollgate.remaining=0,tollgate.result=limited,tollgate.retry_after=60,tollgate.rule=per-user",
	}
	for i, s := range spans {
		if got := attrs(attribute.NewSet(s.Attributes()...)); got != want[i] {
			t.Errorf("span %d: %s, want %s", i, got, want[i])
		}
	}
}

func TestMetricsCheckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()
	m, err := NewMetrics(WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(memory.New(), []Rule{
		{Name: "per-user", Algorithm: algorithms.TokenBucket, Limit: 1 << 50, Period: time.Second, By: byUser()},
		{Name: "shadow", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Hour, By: byUser(), Mode: Shadow},
	}, WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	req := user("hot")
	l.Check(ctx, req) // first sight of each rule builds its attribute sets
	l.Check(ctx, req)
	if n := testing.AllocsPerRun(1000, func() { l.Check(ctx, req) }); n != 0 {
		t.Errorf("Check with metrics: %v allocs, want 0", n)
	}
}

// countingObserver counts decisions.
type countingObserver struct {
	NopObserver
	decided int
}

func (c *countingObserver) Decided(context.Context, *Request, Decision) { c.decided++ }

func TestObserversTellMetricsAndAnotherObserver(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()
	m, err := NewMetrics(WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	var mine countingObserver
	l, _, _ := newTestLimiter(t, []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute}},
		WithObserver(Observers(m, &mine, nil)))
	l.Check(ctx, user("a"))
	l.Check(ctx, user("a"))
	data := collect(t, reader)
	if mine.decided != 2 {
		t.Errorf("own observer told of %d decisions, want 2", mine.decided)
	}
	wantPoints(t, "tollgate.decisions", sums(t, data, "tollgate.decisions"), map[string]int64{"tollgate.result=allowed,tollgate.rule=r": 2})
	if h, ok := data["tollgate.store.duration"].(metricdata.Histogram[float64]); !ok || len(h.DataPoints) != 1 || h.DataPoints[0].Count != 2 {
		t.Errorf("store durations through Observers: %#v", data["tollgate.store.duration"])
	}
	if _, ok := data["tollgate.store.circuit.open"]; !ok {
		t.Error("Observers did not attach the limiter to Metrics: no circuit gauge")
	}
	if _, ok := Observers(&mine).(StoreObserver); ok {
		t.Error("Observers of no StoreObserver is one: the limiter would time store calls for nobody")
	}
}
