package benchmarks

import "fmt"

// Kind says how a [Budget] compares its figure with its bound.
type Kind uint8

const (
	// Ratio bounds Figure / Baseline, both in the budget's Metric.
	Ratio Kind = iota
	// Added bounds Figure − Baseline, in the budget's Metric: the time a
	// wrapper adds to what it wraps.
	Added
	// Absolute bounds Figure alone. A Baseline, when named, is shown for
	// scale only.
	Absolute
	// Reported has no bound: the figure, and its ratio to the baseline when
	// there is one, are shown so that a change is seen.
	Reported
)

// NoAllocLimit is the MaxAllocs of a budget that does not bound allocations.
const NoAllocLimit = -1

// Budget is one performance budget: a benchmark, the baseline it is measured
// against in the same run, and the bound it must keep.
//
// Benchmark and Baseline are benchmark names without the "Benchmark" prefix
// and without the -GOMAXPROCS suffix, as "HotKey/tollgate".
type Budget struct {
	// Name identifies the budget in the report; the report's -run flag
	// matches it.
	Name string
	// Issue is the number of the issue that set the budget.
	Issue int
	// Benchmark is ours. Empty means the code it measures does not exist
	// yet: the report lists the budget as pending.
	Benchmark string
	// Baseline is what Benchmark is compared with; empty for an Absolute
	// budget without one.
	Baseline string
	// Metric is the unit compared, as the benchmark prints it; "" means
	// "ns/op".
	Metric string
	// Kind says how Max applies.
	Kind Kind
	// Max is the bound: a ratio for Ratio, an amount of Metric for Added
	// and Absolute.
	Max float64
	// MaxAllocs bounds Benchmark's allocs/op; NoAllocLimit leaves them
	// unchecked (they are reported all the same).
	MaxAllocs int
	// Tolerance is the fraction by which the figure may exceed Max before
	// the report fails: 0.1 fails a ratio budget of 2 only above 2.2. It
	// absorbs the noise of a shared machine; it does not apply to
	// allocations, which are exact.
	Tolerance float64
	// Benchtime overrides the report's -benchtime for both benchmarks, for
	// benchmarks whose single iteration is the measurement (as "1x").
	Benchtime string
	// Redis marks budgets that need a redis-server.
	Redis bool
	// Note says what is measured, in a few words.
	Note string
}

// MetricName returns the budget's Metric, "ns/op" when empty.
func (b Budget) MetricName() string {
	if b.Metric == "" {
		return "ns/op"
	}
	return b.Metric
}

// Pending reports whether the budget's code does not exist yet.
func (b Budget) Pending() bool { return b.Benchmark == "" }

// Bound returns the budget's bound as the report prints it, as "≤ 0.8×".
func (b Budget) Bound() string {
	var s string
	switch b.Kind {
	case Ratio:
		s = fmt.Sprintf("≤ %g×", b.Max)
	case Added:
		s = "≤ +" + FormatAmount(b.Max, b.MetricName())
	case Absolute:
		s = "≤ " + FormatAmount(b.Max, b.MetricName())
	case Reported:
		s = "reported"
	}
	if b.MaxAllocs != NoAllocLimit {
		s += fmt.Sprintf(", ≤ %d allocs", b.MaxAllocs)
	}
	return s
}

// FormatAmount prints v in unit as the report does: time in ns, µs or ms,
// other units as they are.
func FormatAmount(v float64, unit string) string {
	if unit != "ns/op" {
		return fmt.Sprintf("%.3g %s", v, unit)
	}
	switch {
	case v >= 1e6 || v <= -1e6:
		return fmt.Sprintf("%.3g ms", v/1e6)
	case v >= 1e3 || v <= -1e3:
		return fmt.Sprintf("%.3g µs", v/1e3)
	}
	return fmt.Sprintf("%.3g ns", v)
}

// Budgets returns every budget, in the order of the report. Each call returns
// a new slice.
func Budgets() []Budget {
	const tol = 0.10 // ratios of interleaved runs on a shared 2-core machine
	return []Budget{
		// Issue 2: the Limiter on the memory store.
		{Name: "hot key, 1 rule", Issue: 2, Benchmark: "HotKey/tollgate", Baseline: "HotKey/x-time-rate",
			Kind: Ratio, Max: 0.8, MaxAllocs: 0, Tolerance: tol,
			Note: "Limiter.Check vs rate.Limiter.Allow, one goroutine"},
		{Name: "hot key, 1 rule, parallel", Issue: 2, Benchmark: "HotKey/tollgate-parallel", Baseline: "HotKey/x-time-rate-parallel",
			Kind: Reported, MaxAllocs: 0,
			Note: "the same with b.RunParallel"},
		{Name: "100k keys, 1 rule", Issue: 2, Benchmark: "Keys100k/tollgate-1rule", Baseline: "Keys100k/x-time-rate-64-shards",
			Kind: Ratio, Max: 0.5, MaxAllocs: 0, Tolerance: tol,
			Note: "vs rate.Limiters in a 64-shard map"},
		{Name: "100k keys, 4 rules", Issue: 2, Benchmark: "Keys100k/tollgate-4rules", Baseline: "Keys100k/tollgate-1rule",
			Kind: Ratio, Max: 2, MaxAllocs: 0, Tolerance: tol,
			Note: "vs our own 1-rule decision"},
		{Name: "100k keys, 1 rule, parallel", Issue: 2, Benchmark: "Keys100k/tollgate-1rule-parallel", Baseline: "Keys100k/x-time-rate-64-shards-parallel",
			Kind: Reported, MaxAllocs: 0,
			Note: "the same with b.RunParallel"},
		{Name: "bytes per key", Issue: 2, Benchmark: "BytesPerKey/tollgate", Baseline: "BytesPerKey/map-string-int64",
			Metric: "bytes/key", Kind: Ratio, Max: 1.3, MaxAllocs: NoAllocLimit, Tolerance: 0.02, Benchtime: "1x",
			Note: "1,000,000 keys of 21 bytes, heap per key"},
		{Name: "expire 1,000 idle keys", Issue: 2, Benchmark: "Expire1000/tollgate",
			Kind: Absolute, Max: 1e6, MaxAllocs: NoAllocLimit, Tolerance: tol,
			Note: "Store.Sweep over 1,000 idle among 10,000 keys"},

		// Issue 3: the Redis store, against a redis-server the benchmark starts.
		{Name: "redis 1 rule, 64 goroutines", Issue: 3, Benchmark: "Redis/goroutines=64/tollgate-1rule", Baseline: "Redis/goroutines=64/evalsha-return1",
			Kind: Ratio, Max: 1.2, MaxAllocs: 12, Tolerance: tol, Redis: true,
			Note: "Store.Apply, one EVALSHA per decision"},
		{Name: "redis 4 rules, 64 goroutines", Issue: 3, Benchmark: "Redis/goroutines=64/tollgate-4rules", Baseline: "Redis/goroutines=64/evalsha-return1",
			Kind: Ratio, Max: 1.4, MaxAllocs: 12, Tolerance: tol, Redis: true,
			Note: "4 rules in one EVALSHA"},
		{Name: "redis PING, 64 goroutines", Issue: 3, Benchmark: "Redis/goroutines=64/ping", Baseline: "Redis/goroutines=64/evalsha-return1",
			Kind: Reported, MaxAllocs: NoAllocLimit, Redis: true,
			Note: "the round trip alone, for scale"},
		{Name: "redis 1 rule, 8 goroutines", Issue: 3, Benchmark: "Redis/goroutines=8/tollgate-1rule", Baseline: "Redis/goroutines=8/evalsha-return1",
			Kind: Reported, MaxAllocs: 12, Redis: true},
		{Name: "redis 4 rules, 8 goroutines", Issue: 3, Benchmark: "Redis/goroutines=8/tollgate-4rules", Baseline: "Redis/goroutines=8/evalsha-return1",
			Kind: Reported, MaxAllocs: 12, Redis: true},
		{Name: "redis 1 rule, 1 goroutine", Issue: 3, Benchmark: "Redis/goroutines=1/tollgate-1rule", Baseline: "Redis/goroutines=1/evalsha-return1",
			Kind: Reported, MaxAllocs: 12, Redis: true},
		{Name: "redis 4 rules, 1 goroutine", Issue: 3, Benchmark: "Redis/goroutines=1/tollgate-4rules", Baseline: "Redis/goroutines=1/evalsha-return1",
			Kind: Reported, MaxAllocs: 12, Redis: true},

		// Issue 4: usage extraction from SSE streams.
		{Name: "SSE extraction, 10 MB", Issue: 4, Benchmark: "SSE/Meter", Baseline: "SSE/io.Copy",
			Kind: Ratio, Max: 3, MaxAllocs: NoAllocLimit, Tolerance: tol,
			Note: "tokens.Meter vs io.Copy of the same stream fixtures"},
		{Name: "SSE allocs per event without usage", Issue: 4, Benchmark: "SSENoUsage/Meter",
			Metric: "allocs/event", Kind: Absolute, Max: 0, MaxAllocs: NoAllocLimit,
			Note: "allocations per extra event, from two stream lengths"},

		// Issue 5: policy matching.
		{Name: "1,000 policy rules, 1 matches", Issue: 5, Benchmark: "Policy1000Rules/tollgate", Baseline: "Policy1000Rules/1-rule",
			Kind: Absolute, Max: 2000, MaxAllocs: 0, Tolerance: tol,
			Note: "Limiter.Check; baseline: 1 rule without a predicate"},

		// Issue 6: the net/http middleware.
		{Name: "middleware, memory store, 1 rule", Issue: 6, Benchmark: "Middleware/limited", Baseline: "Middleware/bare",
			Kind: Added, Max: 1500, MaxAllocs: NoAllocLimit, Tolerance: tol,
			Note: "time added to a bare handler"},
		{Name: "middleware LLM mode, 4 KB SSE", Issue: 6, Benchmark: "MiddlewareLLM/llm", Baseline: "MiddlewareLLM/bare",
			Kind: Reported, MaxAllocs: NoAllocLimit,
			Note: "estimate, reserve, meter the stream, settle"},

		// Issue 9: local-first hot keys.
		{Name: "local-first hot key vs pure Redis", Issue: 9, Benchmark: "LocalFirst/leases-of-1000-units", Baseline: "LocalFirst/redis",
			Kind: Ratio, Max: 0.1, MaxAllocs: NoAllocLimit, Tolerance: tol, Redis: true,
			Note: "≥ 10× the Redis store's throughput: store/lease, leases of 1,000, 64 goroutines"},
	}
}
