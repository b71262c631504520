package hostiletest

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

// flakyStore is a memory store whose every failEvery'th Apply fails
// with an error naming the batch's first key (request data), so that the
// flood also produces error results.
type flakyStore struct {
	*memory.Store
	calls     atomic.Int64
	failEvery int64
}

func (s *flakyStore) Apply(ctx context.Context, now int64, ops []store.Op, res []algorithms.Result) error {
	if s.calls.Add(1)%s.failEvery == 0 && len(ops) > 0 {
		return errors.New("injected failure on key " + ops[0].Key)
	}
	return s.Store.Apply(ctx, now, ops, res)
}

func (s *flakyStore) InProcess() bool { return true }

// metricsRules covers every unit and mode that yields attributes: request
// rules keyed by each request dimension, a global rule, a shadow rule
// that denies, token rules (settled tokens) and a cost rule (budget
// utilization, settled cost).
func metricsRules() []limiter.Rule {
	day := 24 * time.Hour
	return []limiter.Rule{
		perUser,
		{Name: "per-tenant", Limit: 1000, Period: day, By: []dimensions.Dimension{dimensions.Tenant}},
		{Name: "per-ip", Algorithm: algorithms.SlidingWindow, Limit: 1000, Period: time.Hour, By: []dimensions.Dimension{dimensions.ClientIP}},
		{Name: "per-key-model", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: time.Hour, By: []dimensions.Dimension{dimensions.APIKey, dimensions.Model}},
		{Name: "global", Limit: algorithms.MaxLimit, Period: time.Second},
		// One counter: a keyed rule of limit 1 would pin every flood key
		// in the store (see TestFloodOfExhaustedKeys).
		{Name: "shadow-global", Limit: 1, Period: day, Mode: limiter.Shadow},
		{Name: "tpm", Unit: limiter.Tokens, Limit: 1_000_000, Period: time.Minute, By: []dimensions.Dimension{dimensions.User}},
		{Name: "output", Unit: limiter.OutputTokens, Limit: 1_000_000, Period: time.Minute, By: []dimensions.Dimension{dimensions.Tenant}},
		{Name: "budget", Unit: limiter.Cost, Limit: 1_000_000_000, Period: day, By: []dimensions.Dimension{dimensions.Tenant}},
	}
}

// seriesBound is, per instrument, the most attribute sets METRICS.md
// allows with r rules.
func seriesBound(name string, r int) int {
	switch name {
	case "tollgate.decisions":
		return r * 4 // allowed, limited, shadow_limited, error
	case "tollgate.tokens.settled":
		return r * 2 // input, output
	case "tollgate.cost.settled", "tollgate.budget.utilization":
		return r
	case "tollgate.usage.missing":
		return r + 1 // per rule, or none
	case "tollgate.store.duration", "tollgate.config.reloads":
		return 3 // none, timeout, _OTHER
	case "tollgate.reservations.active", "tollgate.store.circuit.open":
		return 1
	}
	return -1
}

// series returns each instrument's attribute sets, and every attribute
// value seen.
func series(rm *metricdata.ResourceMetrics) (map[string][]attribute.Set, map[string]bool) {
	out := map[string][]attribute.Set{}
	values := map[string]bool{}
	add := func(name string, s attribute.Set) {
		out[name] = append(out[name], s)
		for _, kv := range s.ToSlice() {
			values[string(kv.Key)+"="+kv.Value.Emit()] = true
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = out[m.Name][:0:0]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			default:
				out[m.Name+" (unknown type)"] = nil
			}
		}
	}
	return out, values
}

// TestMetricsCardinalityUnderFlood floods a limiter observed by
// limiter.Metrics with distinct users, tenants, API keys, models and
// client IPs, settling every reservation (half of them as usage missing)
// and failing every 97th store call with an error that names a key. At
// checkpoints and at the end, every instrument's number of attribute sets
// stays within rules × results, and no attribute value carries request
// data.
func TestMetricsCardinalityUnderFlood(t *testing.T) {
	n := 300_000 // some 10 s on two loaded cores
	switch {
	case long():
		n = 1_000_000
	case raceEnabled:
		n = 40_000
	}
	const checkpoints = 5
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m, err := limiter.NewMetrics(limiter.WithMeterProvider(mp), limiter.WithoutSpanAttributes())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := &flakyStore{Store: memory.New(memory.WithMaxKeys(floodCap)), failEvery: 97}
	defer s.Close()
	rules := metricsRules()
	l, err := limiter.New(s, rules, limiter.WithObserver(m), limiter.WithFailMode(limiter.FailAllow))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exhaust(t, l) // the victims give limited results; the flakiness may deny one early
	m.ConfigReloaded(ctx, nil)
	m.ConfigReloaded(ctx, errors.New("bad policy flood-reload"))

	allowedValues := map[string]bool{}
	for _, r := range rules {
		allowedValues[string(limiter.AttrRule)+"="+r.Name] = true
	}
	for _, v := range []string{limiter.ResultAllowed, limiter.ResultLimited, limiter.ResultShadowLimited, limiter.ResultError} {
		allowedValues[string(limiter.AttrResult)+"="+v] = true
	}
	for _, v := range []string{"input", "output"} {
		allowedValues[string(limiter.AttrTokenType)+"="+v] = true
	}
	for _, v := range []string{"timeout", "_OTHER"} {
		allowedValues[string(limiter.AttrErrorType)+"="+v] = true
	}

	check := func(label string) int {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatalf("%s: Collect: %v", label, err)
		}
		got, values := series(&rm)
		names := make([]string, 0, len(got))
		total := 0
		for name, sets := range got {
			names = append(names, name)
			total += len(sets)
			b := seriesBound(name, len(rules))
			if b < 0 {
				t.Errorf("%s: unknown instrument %q (%d attribute sets): not in METRICS.md", label, name, len(sets))
				continue
			}
			if len(sets) > b {
				t.Errorf("%s: %s has %d attribute sets, want <= %d", label, name, len(sets), b)
			}
		}
		for v := range values {
			if !allowedValues[v] {
				t.Errorf("%s: attribute %q is neither a rule name nor a fixed word", label, v)
			}
		}
		sort.Strings(names)
		var sb strings.Builder
		for _, name := range names {
			sb.WriteString(" " + name + "=" + strconv.Itoa(len(got[name])))
		}
		t.Logf("%s: %d attribute sets:%s", label, total, sb.String())
		return total
	}

	var next, allowed, limited, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	first := 0
	for c := 1; c <= checkpoints; c++ {
		end := int64(n * c / checkpoints)
		for range 2 {
			wg.Go(func() {
				buf := make([]byte, 0, 32)
				for {
					i := next.Add(1)
					if i > end {
						next.Add(-1)
						return
					}
					k := floodKey(buf, uint64(i))
					req := &limiter.Request{
						Facts: dimensions.Facts{
							User: "flood-u" + k, Tenant: "flood-t" + k, APIKey: "flood-k" + k,
							Model: "flood-m" + k, ClientIP: "flood-ip" + k,
						},
						Estimate: limiter.Usage{InputTokens: 10, OutputTokens: 20, Cost: 7},
					}
					if i%victimEvery == 0 {
						req.User = victimKey(int(i/victimEvery) % floodVictims)
					}
					d := l.Check(ctx, req)
					switch {
					case d.Err != nil:
						failed.Add(1)
					case d.Allowed:
						allowed.Add(1)
					default:
						limited.Add(1)
					}
					if res := d.Reservation; res != nil {
						if i%2 == 0 {
							m.UsageMissing(ctx, res)
							_ = res.Settle(ctx, req.Estimate)
						} else {
							_ = res.Settle(ctx, limiter.Usage{InputTokens: 9, OutputTokens: 11, Cost: 5})
						}
					}
				}
			})
		}
		wg.Wait()
		total := check("after " + strconv.Itoa(n*c/checkpoints) + " keys")
		if c == 1 {
			first = total
		}
	}
	elapsed := time.Since(start)
	t.Logf("flood with metrics: %d requests (%d allowed, %d limited, %d store errors) in %v: %.0f/s",
		n, allowed.Load(), limited.Load(), failed.Load(), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	last := check("final")
	t.Logf("attribute sets: %d after the first %d keys, %d after %d keys (rules %d)", first, n/checkpoints, last, n, len(rules))
	if last > first {
		t.Errorf("attribute sets grew from %d to %d as the flood went on, want no growth", first, last)
	}
	if limited.Load() == 0 || failed.Load() == 0 {
		t.Errorf("the flood produced %d limited and %d failed checks, want some of each", limited.Load(), failed.Load())
	}
}
