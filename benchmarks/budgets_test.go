package benchmarks

import (
	"regexp"
	"testing"
)

// TestBudgets checks that every budget can be evaluated: a unique name, an
// issue, a bound that fits its kind, and benchmark names the report can
// find (a trailing -N would be taken for the GOMAXPROCS suffix).
func TestBudgets(t *testing.T) {
	procsSuffix := regexp.MustCompile(`-\d+$`)
	seen := map[string]bool{}
	for _, b := range Budgets() {
		if b.Name == "" || seen[b.Name] {
			t.Errorf("budget %q: empty or duplicate name", b.Name)
		}
		seen[b.Name] = true
		if b.Issue == 0 {
			t.Errorf("budget %q: no issue", b.Name)
		}
		if b.Max < 0 || b.Tolerance < 0 || b.Tolerance > 0.5 {
			t.Errorf("budget %q: Max %g, Tolerance %g", b.Name, b.Max, b.Tolerance)
		}
		if (b.Kind == Ratio || b.Kind == Added) && b.Baseline == "" && !b.Pending() {
			t.Errorf("budget %q: a %v budget needs a baseline", b.Name, b.Kind)
		}
		if b.Kind == Ratio && b.Max == 0 {
			t.Errorf("budget %q: a ratio budget of 0", b.Name)
		}
		for _, name := range []string{b.Benchmark, b.Baseline} {
			if procsSuffix.MatchString(name) {
				t.Errorf("budget %q: benchmark %q ends like a -GOMAXPROCS suffix", b.Name, name)
			}
		}
	}
}

func TestBound(t *testing.T) {
	for _, tc := range []struct {
		b    Budget
		want string
	}{
		{Budget{Kind: Ratio, Max: 0.8, MaxAllocs: 0}, "≤ 0.8×, ≤ 0 allocs"},
		{Budget{Kind: Added, Max: 1500, MaxAllocs: NoAllocLimit}, "≤ +1.5 µs"},
		{Budget{Kind: Absolute, Max: 1e6, MaxAllocs: NoAllocLimit}, "≤ 1 ms"},
		{Budget{Kind: Absolute, Metric: "allocs/event", MaxAllocs: NoAllocLimit}, "≤ 0 allocs/event"},
		{Budget{Kind: Reported, MaxAllocs: 12}, "reported, ≤ 12 allocs"},
	} {
		if got := tc.b.Bound(); got != tc.want {
			t.Errorf("Bound() = %q, want %q", got, tc.want)
		}
	}
}
