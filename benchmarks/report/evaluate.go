package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/tollgate-go/tollgate/benchmarks"
)

// Verdict is what the report says of one budget.
type Verdict uint8

const (
	// Holds: the figure is within the bound.
	Holds Verdict = iota
	// WithinTolerance: over the bound, but by no more than the tolerance.
	WithinTolerance
	// Missed: over the bound by more than the tolerance, or over the
	// allocation limit. The report exits non-zero.
	Missed
	// Reported: a budget without a bound; the figures are shown.
	Reported
	// Pending: the code the budget measures does not exist yet.
	Pending
	// Skipped: not run (no redis-server, or the benchmark skipped itself).
	Skipped
	// NoData: the benchmark, or its baseline, produced no figure.
	NoData
)

func (v Verdict) String() string {
	switch v {
	case Holds:
		return "yes"
	case WithinTolerance:
		return "yes, within tolerance"
	case Missed:
		return "NO"
	case Reported:
		return "(reported)"
	case Pending:
		return "pending"
	case Skipped:
		return "skipped"
	case NoData:
		return "NO DATA"
	}
	return fmt.Sprintf("Verdict(%d)", v)
}

// Failing reports whether the verdict makes the report exit non-zero.
func (v Verdict) Failing() bool { return v == Missed || v == NoData }

// Runs holds, for each benchmark name, its result in each round: nil where
// a round has none.
type Runs map[string][]*Result

// Add records r as the result of its benchmark in round i of rounds.
func (runs Runs) Add(i, rounds int, r Result) {
	if runs[r.Name] == nil {
		runs[r.Name] = make([]*Result, rounds)
	}
	runs[r.Name][i] = &r
}

// Row is one line of the report.
type Row struct {
	Budget benchmarks.Budget
	// Figure and Base are the medians of the benchmark's and the
	// baseline's metric over the rounds (NaN when absent).
	Figure, Base float64
	// Ratio is the median of the per-round Figure/Base ratios and Added
	// the median of the per-round differences, over the rounds that have
	// both (NaN when none).
	Ratio, Added float64
	// Allocs is the median allocs/op of the benchmark (NaN when absent).
	Allocs float64
	// Rounds is the number of rounds with a figure for the benchmark.
	Rounds  int
	Verdict Verdict
	// Why explains a verdict other than Holds and Reported.
	Why string
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// values returns the metric of name in each round that has it.
func (runs Runs) values(name, metric string) []float64 {
	var xs []float64
	for _, r := range runs[name] {
		if r == nil {
			continue
		}
		if v, ok := r.Metrics[metric]; ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// paired returns f(ours, base) for each round that has both.
func (runs Runs) paired(ours, base, metric string, f func(o, b float64) float64) []float64 {
	var xs []float64
	o, b := runs[ours], runs[base]
	for i := range min(len(o), len(b)) {
		if o[i] == nil || b[i] == nil {
			continue
		}
		ov, ok1 := o[i].Metrics[metric]
		bv, ok2 := b[i].Metrics[metric]
		if ok1 && ok2 {
			xs = append(xs, f(ov, bv))
		}
	}
	return xs
}

// SkippedRow is the row of a budget that was not run, for the reason why.
func SkippedRow(b benchmarks.Budget, why string) Row {
	nan := math.NaN()
	return Row{Budget: b, Figure: nan, Base: nan, Ratio: nan, Added: nan, Allocs: nan, Verdict: Skipped, Why: why}
}

// Evaluate checks budget b against the runs.
func Evaluate(b benchmarks.Budget, runs Runs) Row {
	row := Row{Budget: b, Figure: math.NaN(), Base: math.NaN(), Ratio: math.NaN(), Added: math.NaN(), Allocs: math.NaN()}
	if b.Pending() {
		row.Verdict, row.Why = Pending, b.Note
		return row
	}
	metric := b.MetricName()
	figures := runs.values(b.Benchmark, metric)
	row.Rounds = len(figures)
	row.Figure = median(figures)
	row.Allocs = median(runs.values(b.Benchmark, "allocs/op"))
	if len(figures) == 0 {
		row.Verdict, row.Why = NoData, "no "+metric+" figure for "+b.Benchmark
		return row
	}
	if b.Baseline != "" {
		row.Base = median(runs.values(b.Baseline, metric))
		row.Ratio = median(runs.paired(b.Benchmark, b.Baseline, metric, func(o, b float64) float64 { return o / b }))
		row.Added = median(runs.paired(b.Benchmark, b.Baseline, metric, func(o, b float64) float64 { return o - b }))
		if math.IsNaN(row.Ratio) && b.Kind != benchmarks.Absolute {
			row.Verdict, row.Why = NoData, "no round with both "+b.Benchmark+" and "+b.Baseline
			return row
		}
	}
	var value float64
	switch b.Kind {
	case benchmarks.Ratio:
		value = row.Ratio
	case benchmarks.Added:
		value = row.Added
	case benchmarks.Absolute:
		value = row.Figure
	case benchmarks.Reported:
		row.Verdict = Reported
	}
	if row.Verdict != Reported {
		switch {
		case value <= b.Max:
			row.Verdict = Holds
		case value <= b.Max*(1+b.Tolerance):
			row.Verdict = WithinTolerance
			row.Why = fmt.Sprintf("over by %.0f%%, tolerance %.0f%%", 100*(value/b.Max-1), 100*b.Tolerance)
		default:
			row.Verdict = Missed
			row.Why = "over the bound"
			if b.Max > 0 {
				row.Why = fmt.Sprintf("over by %.0f%%", 100*(value/b.Max-1))
			}
		}
	}
	if b.MaxAllocs != benchmarks.NoAllocLimit && !math.IsNaN(row.Allocs) && row.Allocs > float64(b.MaxAllocs) {
		why := fmt.Sprintf("%g allocs/op, limit %d", row.Allocs, b.MaxAllocs)
		if row.Verdict == Missed {
			row.Why += "; " + why
		} else {
			row.Why = why
		}
		if row.Verdict == Reported {
			row.Why = "over the alloc limit: " + why
		}
		row.Verdict = Missed
	}
	return row
}
