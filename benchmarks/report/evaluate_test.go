package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/tollgate-go/tollgate/benchmarks"
)

// runsOf builds Runs from per-round ns/op (and allocs/op) figures; NaN
// stands for a round without the benchmark.
func runsOf(metric string, figures map[string][]float64, allocs map[string]float64) Runs {
	runs := Runs{}
	for name, fs := range figures {
		for i, f := range fs {
			if math.IsNaN(f) {
				continue
			}
			m := map[string]float64{metric: f}
			if a, ok := allocs[name]; ok {
				m["allocs/op"] = a
			}
			runs.Add(i, len(fs), Result{Name: name, N: 1000, Metrics: m})
		}
	}
	return runs
}

func TestEvaluate(t *testing.T) {
	nan := math.NaN()
	ratio := benchmarks.Budget{Name: "r", Benchmark: "X/ours", Baseline: "X/base", Kind: benchmarks.Ratio, Max: 0.8, MaxAllocs: 0, Tolerance: 0.1}
	added := benchmarks.Budget{Name: "a", Benchmark: "M/limited", Baseline: "M/bare", Kind: benchmarks.Added, Max: 1500, MaxAllocs: benchmarks.NoAllocLimit, Tolerance: 0.1}
	absolute := benchmarks.Budget{Name: "abs", Benchmark: "E/ours", Kind: benchmarks.Absolute, Max: 1e6, MaxAllocs: benchmarks.NoAllocLimit, Tolerance: 0.1}
	reported := benchmarks.Budget{Name: "rep", Benchmark: "X/ours", Baseline: "X/base", Kind: benchmarks.Reported, MaxAllocs: 12}
	for _, tc := range []struct {
		name        string
		budget      benchmarks.Budget
		figures     map[string][]float64
		allocs      map[string]float64
		metric      string
		wantVerdict Verdict
		wantRatio   float64 // NaN: not checked
		wantFigure  float64
	}{
		{
			name:        "ratio holds",
			budget:      ratio,
			figures:     map[string][]float64{"X/ours": {70, 75, 80}, "X/base": {100, 100, 100}},
			allocs:      map[string]float64{"X/ours": 0},
			wantVerdict: Holds, wantRatio: 0.75, wantFigure: 75,
		},
		{
			name:   "ratio is the median of paired rounds, not the ratio of medians",
			budget: ratio,
			// A noisy round slows both sides: paired ratios are 0.7, 0.7, 0.9.
			figures:     map[string][]float64{"X/ours": {70, 140, 90}, "X/base": {100, 200, 100}},
			allocs:      map[string]float64{"X/ours": 0},
			wantVerdict: Holds, wantRatio: 0.7, wantFigure: 90,
		},
		{
			name:        "ratio over the bound, within tolerance",
			budget:      ratio,
			figures:     map[string][]float64{"X/ours": {85, 85}, "X/base": {100, 100}},
			allocs:      map[string]float64{"X/ours": 0},
			wantVerdict: WithinTolerance, wantRatio: 0.85, wantFigure: 85,
		},
		{
			name:        "ratio missed",
			budget:      ratio,
			figures:     map[string][]float64{"X/ours": {200}, "X/base": {100}},
			allocs:      map[string]float64{"X/ours": 0},
			wantVerdict: Missed, wantRatio: 2, wantFigure: 200,
		},
		{
			name:        "time holds but allocations missed",
			budget:      ratio,
			figures:     map[string][]float64{"X/ours": {50}, "X/base": {100}},
			allocs:      map[string]float64{"X/ours": 1},
			wantVerdict: Missed, wantRatio: 0.5, wantFigure: 50,
		},
		{
			name:        "rounds without a pair are left out of the ratio",
			budget:      ratio,
			figures:     map[string][]float64{"X/ours": {70, 500, 70}, "X/base": {100, nan, 100}},
			allocs:      map[string]float64{"X/ours": 0},
			wantVerdict: Holds, wantRatio: 0.7, wantFigure: 70,
		},
		{
			name:        "baseline missing",
			budget:      ratio,
			figures:     map[string][]float64{"X/ours": {70}},
			wantVerdict: NoData, wantRatio: nan, wantFigure: 70,
		},
		{
			name:        "benchmark missing",
			budget:      ratio,
			figures:     map[string][]float64{"X/base": {70}},
			wantVerdict: NoData, wantRatio: nan, wantFigure: nan,
		},
		{
			name:        "added holds",
			budget:      added,
			figures:     map[string][]float64{"M/limited": {1020, 1530, 1100}, "M/bare": {20, 30, 100}},
			wantVerdict: Holds, wantRatio: 51, wantFigure: 1100,
		},
		{
			name:        "added missed",
			budget:      added,
			figures:     map[string][]float64{"M/limited": {3545}, "M/bare": {20}},
			wantVerdict: Missed, wantRatio: 177.25, wantFigure: 3545,
		},
		{
			name:        "absolute holds, no baseline",
			budget:      absolute,
			figures:     map[string][]float64{"E/ours": {404e3, 700e3, 90e3}},
			wantVerdict: Holds, wantRatio: nan, wantFigure: 404e3,
		},
		{
			name:        "absolute of zero: anything above is missed",
			budget:      benchmarks.Budget{Benchmark: "S/Meter", Metric: "allocs/event", Kind: benchmarks.Absolute, MaxAllocs: benchmarks.NoAllocLimit, Tolerance: 0.1},
			metric:      "allocs/event",
			figures:     map[string][]float64{"S/Meter": {0.001}},
			wantVerdict: Missed, wantRatio: nan, wantFigure: 0.001,
		},
		{
			name:        "reported",
			budget:      reported,
			figures:     map[string][]float64{"X/ours": {300}, "X/base": {100}},
			allocs:      map[string]float64{"X/ours": 5},
			wantVerdict: Reported, wantRatio: 3, wantFigure: 300,
		},
		{
			name:        "reported, over its allocation limit",
			budget:      reported,
			figures:     map[string][]float64{"X/ours": {300}, "X/base": {100}},
			allocs:      map[string]float64{"X/ours": 13},
			wantVerdict: Missed, wantRatio: 3, wantFigure: 300,
		},
		{
			name:        "pending",
			budget:      benchmarks.Budget{Name: "local-first", Kind: benchmarks.Ratio, Max: 0.1},
			wantVerdict: Pending, wantRatio: nan, wantFigure: nan,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metric := tc.metric
			if metric == "" {
				metric = "ns/op"
			}
			got := Evaluate(tc.budget, runsOf(metric, tc.figures, tc.allocs))
			if got.Verdict != tc.wantVerdict {
				t.Errorf("verdict %v (%s), want %v", got.Verdict, got.Why, tc.wantVerdict)
			}
			if !sameFloat(got.Figure, tc.wantFigure) {
				t.Errorf("figure %v, want %v", got.Figure, tc.wantFigure)
			}
			if !sameFloat(got.Ratio, tc.wantRatio) {
				t.Errorf("ratio %v, want %v", got.Ratio, tc.wantRatio)
			}
		})
	}
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func TestWriteTableExitStatus(t *testing.T) {
	for _, tc := range []struct {
		verdicts []Verdict
		want     int
	}{
		{[]Verdict{Holds, WithinTolerance, Reported, Pending, Skipped}, 0},
		{[]Verdict{Holds, Missed}, 1},
		{[]Verdict{NoData}, 1},
	} {
		rows := make([]Row, len(tc.verdicts))
		for i, v := range tc.verdicts {
			rows[i] = Row{Budget: benchmarks.Budget{Name: v.String(), Kind: benchmarks.Ratio, Max: 1},
				Figure: 1, Base: 1, Ratio: 1, Added: 0, Allocs: 0, Verdict: v}
		}
		var buf bytes.Buffer
		if got := WriteTable(&buf, rows); got != tc.want {
			t.Errorf("WriteTable(%v) = %d, want %d", tc.verdicts, got, tc.want)
		}
		if lines := strings.Count(buf.String(), "\n"); lines != len(rows)+1 {
			t.Errorf("%d lines, want a header and %d rows:\n%s", lines, len(rows), buf.String())
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestWriteTableSkippedRow(t *testing.T) {
	b := benchmarks.Budget{Name: "redis 1 rule, 64 goroutines", Issue: 3, Kind: benchmarks.Ratio, Max: 1.2, MaxAllocs: 12}
	var buf bytes.Buffer
	if code := WriteTable(&buf, []Row{SkippedRow(b, "redis-server is not installed")}); code != 0 {
		t.Errorf("exit status %d for a skipped row, want 0", code)
	}
	row := strings.Split(buf.String(), "\n")[1]
	if !strings.Contains(row, "skipped (redis-server is not installed)") || strings.Contains(row, "0 ns") {
		t.Errorf("row %q: want dashes for the figures and the reason", row)
	}
}
