package policy

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

func TestThresholds(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - {name: budget, limit: 1000000, calendar: day, unit: cost, by: [tenant], thresholds: [0.5, 0.9, 1]}
  - {name: quiet, limit: 100/m, thresholds: []}
  - {name: plain, limit: 100/m}
  - {name: child, parent: budget, share: 0.5, by: [user], thresholds: [0.75]}
`)
	got := map[string][]float64{}
	for _, r := range p.Rules() {
		got[r.Name] = r.Thresholds
	}
	for name, want := range map[string][]float64{"budget": {0.5, 0.9, 1}, "quiet": {}, "plain": nil, "child": {0.75}} {
		if !slices.Equal(got[name], want) || (got[name] == nil) != (want == nil) {
			t.Errorf("%s: thresholds %#v, want %#v", name, got[name], want)
		}
	}

	var fired []string
	l, _ := newLimiter(t, p, limiter.WithThresholdHook(func(_ context.Context, e limiter.ThresholdEvent) {
		fired = append(fired, fmt.Sprintf("%s@%v", e.Rule.Name, e.Threshold))
	}))
	req := &limiter.Request{Facts: dimensions.Facts{Tenant: "acme", User: "u"}, Estimate: limiter.Usage{Cost: 400_000}}
	check(t, l, req)
	if want := []string{"child@0.75"}; !slices.Equal(fired, want) { // child: 400k of 500k
		t.Errorf("fired %v, want %v", fired, want)
	}
	req.Facts.User = "v"
	check(t, l, req)
	if want := []string{"child@0.75", "budget@0.5", "child@0.75"}; !slices.Equal(fired, want) { // budget: 800k; v's child: 400k
		t.Errorf("fired %v, want %v", fired, want)
	}
}

func TestInvalidThresholds(t *testing.T) {
	for _, c := range []struct{ doc, path string }{
		{`{name: r, limit: 10/m, thresholds: [0]}`, "/rules/0/thresholds/0"},
		{`{name: r, limit: 10/m, thresholds: [0.5, 1.5]}`, "/rules/0/thresholds/1"},
		{`{name: r, limit: 10/m, thresholds: 0.8}`, "/rules/0/thresholds"},
		{`{name: r, deny_models: [gpt-4], thresholds: [0.8]}`, "/rules/0/thresholds"},
	} {
		_, err := Load([]byte("version: 1\nrules:\n  - " + c.doc + "\n"))
		errs := Errors(err)
		if len(errs) == 0 || errs[0].Path != c.path || (c.path != "/rules/0/thresholds" && !contains(errs[0].Message, "outside (0, 1]")) {
			t.Errorf("%s: %v, want an error at %s", c.doc, err, c.path)
		}
	}
}
