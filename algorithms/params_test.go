package algorithms_test

import (
	"errors"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
)

func TestValidate(t *testing.T) {
	ok := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1_000_000}
	tests := []struct {
		name  string
		edit  func(*algorithms.Params)
		valid bool
	}{
		{"ok", func(*algorithms.Params) {}, true},
		{"limit 0", func(p *algorithms.Params) { p.Limit = 0 }, true},
		{"max limit, burst, period", func(p *algorithms.Params) {
			p.Limit, p.Burst, p.Period = algorithms.MaxLimit, algorithms.MaxLimit, algorithms.MaxPeriod
		}, true},
		{"any offset", func(p *algorithms.Params) { p.Offset = -1 << 63 }, true},
		{"kind 0", func(p *algorithms.Params) { p.Kind = 0 }, false},
		{"kind 6", func(p *algorithms.Params) { p.Kind = 6 }, false},
		{"negative limit", func(p *algorithms.Params) { p.Limit = -1 }, false},
		{"limit above 2^53", func(p *algorithms.Params) { p.Limit = algorithms.MaxLimit + 1 }, false},
		{"period 0", func(p *algorithms.Params) { p.Period = 0 }, false},
		{"period above 366d", func(p *algorithms.Params) { p.Period = algorithms.MaxPeriod + 1 }, false},
		{"negative burst", func(p *algorithms.Params) { p.Burst = -1 }, false},
		{"burst above 2^53", func(p *algorithms.Params) { p.Burst = algorithms.MaxLimit + 1 }, false},
	}
	for _, tt := range tests {
		p := ok
		tt.edit(&p)
		err := p.Validate()
		if (err == nil) != tt.valid || err != nil && !errors.Is(err, algorithms.ErrInvalidParams) {
			t.Errorf("%s: Validate(%+v) = %v, want valid=%v", tt.name, p, err, tt.valid)
		}
		if tt.valid {
			continue
		}
		// Apply answers invalid parameters with a denial that changes nothing.
		s := algorithms.State{7, 8, 9}
		got, res := algorithms.Apply(p, s, 1, 1, algorithms.Force)
		if got != s || res != (algorithms.Result{Reason: algorithms.ReasonExceedsCapacity}) {
			t.Errorf("%s: Apply = %v %+v, want the state unchanged and exceeds_capacity", tt.name, got, res)
		}
	}
}

func TestKindNames(t *testing.T) {
	for _, k := range allKinds {
		got, ok := algorithms.ParseKind(k.String())
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k.String(), got, ok, k)
		}
	}
	for _, s := range []string{"", "algorithms.Kind(0)", "Token_Bucket", "leaky_bucket"} {
		if k, ok := algorithms.ParseKind(s); ok {
			t.Errorf("ParseKind(%q) = %v, want not ok", s, k)
		}
	}
	if got := algorithms.Kind(9).String(); got != "algorithms.Kind(9)" {
		t.Errorf("Kind(9).String() = %q", got)
	}
	for r, want := range map[algorithms.Reason]string{
		algorithms.ReasonNone: "none", algorithms.ReasonLimited: "limited",
		algorithms.ReasonExceedsCapacity: "exceeds_capacity", 7: "algorithms.Reason(7)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", r, got, want)
		}
	}
}
