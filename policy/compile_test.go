package policy

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

func ruleNamed(t *testing.T, p *Policy, name string) limiter.Rule {
	t.Helper()
	for _, r := range p.Rules() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return limiter.Rule{}
}

// TestHierarchy checks that a child rule holds share of its parent's
// limit per key, and that one Check charges the key and the team
// together.
func TestHierarchy(t *testing.T) {
	p := mustLoad(t, `version: 1
rules:
  - {name: team-rpm, limit: 10/m, by: [tenant], algorithm: fixed_window}
  - {name: key-rpm, parent: team-rpm, share: 0.3, by: [api_key]}
  - {name: key-of-key, parent: key-rpm, share: 0.5}
`)
	child := ruleNamed(t, p, "key-rpm")
	if child.Limit != 3 || child.Period != time.Minute || child.Algorithm != algorithms.FixedWindow ||
		!reflect.DeepEqual(child.By, []dimensions.Dimension{dimensions.Tenant, dimensions.APIKey}) {
		t.Errorf("child = %+v; want 3/m fixed_window by [tenant api_key]", child)
	}
	if gc := ruleNamed(t, p, "key-of-key"); gc.Limit != 1 {
		t.Errorf("grandchild limit = %d; want floor(0.5*3) = 1", gc.Limit)
	}
	p = mustLoad(t, `version: 1
rules:
  - {name: team-rpm, limit: 10/m, by: [tenant], algorithm: fixed_window}
  - {name: key-rpm, parent: team-rpm, share: 0.3, by: [api_key]}
`)
	l, _ := newLimiter(t, p)
	k1 := req(dimensions.Facts{Tenant: "t", APIKey: "k1"})
	d := check(t, l, k1)
	if got := matched(&d); !reflect.DeepEqual(got, []string{"team-rpm", "key-rpm"}) {
		t.Fatalf("matched %q; want both rules in one decision", got)
	}
	if n := admitted(t, l, k1, 10); n != 2 {
		t.Errorf("key k1 admitted %d more; want 2 (3 in all: 30%% of 10)", n)
	}
	// The key was refused by its share, and a refused request charges
	// nothing: the team has 10 - 3 = 7 left for other keys.
	others := 0
	for i := range 10 {
		if check(t, l, req(dimensions.Facts{Tenant: "t", APIKey: string(rune('a' + i))})).Allowed {
			others++
		}
	}
	if others != 7 {
		t.Errorf("other keys admitted %d; want 7", others)
	}
	if d := check(t, l, req(dimensions.Facts{Tenant: "u", APIKey: "k1"})); !d.Allowed {
		t.Errorf("another team: denied %+v", d.Limiting)
	}
}

// TestHierarchyTokens checks shares of a token budget, with burst and
// exact decimal shares.
func TestHierarchyTokens(t *testing.T) {
	p := mustLoad(t, `version: 1
rules:
  - {name: team-tpm, limit: 10000/m, burst: 20000, unit: tokens, by: [tenant]}
  - {name: key-tpm, parent: team-tpm, share: 0.3, by: [api_key], mode: shadow}
`)
	c := ruleNamed(t, p, "key-tpm")
	if c.Limit != 3000 || c.Burst != 6000 || c.Unit != limiter.Tokens || c.Mode != limiter.Shadow {
		t.Errorf("child = %+v; want 3000/m burst 6000 tokens shadow", c)
	}
}

// TestDefaultsAndOverrides shows the precedence, from strongest:
// document overrides, group overrides, the rule, group defaults,
// document defaults.
func TestDefaultsAndOverrides(t *testing.T) {
	p := mustLoad(t, `version: 1
defaults: {algorithm: sliding_window, on_store_error: deny, by: [user]}
overrides: {mode: shadow}
rules:
  - {name: plain, limit: 5/m}
  - {name: own, limit: 5/m, algorithm: gcra, on_store_error: allow, by: [tenant], mode: enforce}
groups:
  - name: team-a
    when: request.tenant == "a"
    defaults: {algorithm: fixed_window, reject: {status: 503, body: busy}}
    overrides: {on_store_error: local, mode: "off"}
    rules:
      - {name: g-plain, limit: 5/m}
      - {name: g-own, limit: 5/m, algorithm: token_bucket, on_store_error: allow}
`)
	for _, tc := range []struct {
		rule string
		algo algorithms.Kind
		fail limiter.FailMode
		mode limiter.Mode
		by   []dimensions.Dimension
	}{
		// Document defaults fill what the rule leaves out; the override wins.
		{"plain", algorithms.SlidingWindow, limiter.FailDeny, limiter.Shadow, []dimensions.Dimension{"user"}},
		// The rule's own values beat defaults, not overrides.
		{"own", algorithms.GCRA, limiter.FailAllow, limiter.Shadow, []dimensions.Dimension{"tenant"}},
		// Group defaults beat document defaults; the document override
		// beats the group override.
		{"g-plain", algorithms.FixedWindow, limiter.FailLocal, limiter.Shadow, []dimensions.Dimension{"user"}},
		// A group override beats the rule's own value.
		{"g-own", algorithms.TokenBucket, limiter.FailLocal, limiter.Shadow, []dimensions.Dimension{"user"}},
	} {
		r := ruleNamed(t, p, tc.rule)
		if r.Algorithm != tc.algo || r.OnStoreError != tc.fail || r.Mode != tc.mode || !reflect.DeepEqual(r.By, tc.by) {
			t.Errorf("%s: algorithm %v, on_store_error %v, mode %v, by %v; want %v, %v, %v, %v",
				tc.rule, r.Algorithm, r.OnStoreError, r.Mode, r.By, tc.algo, tc.fail, tc.mode, tc.by)
		}
	}
	g := ruleNamed(t, p, "g-plain")
	if g.Reject == nil || g.Reject.Status != 503 || string(g.Reject.Body) != "busy" {
		t.Errorf("g-plain reject = %+v; want the group default", g.Reject)
	}
	// The group's predicate restricts its rules.
	if g.When.Match(req(dimensions.Facts{Tenant: "b"})) || !g.When.Match(req(dimensions.Facts{Tenant: "a"})) {
		t.Error("group predicate not applied")
	}
}

// TestOverrideForcesEnforcementOff shows a platform override switching
// every rule to shadow, in a real limiter: nothing is denied.
func TestOverrideForcesShadow(t *testing.T) {
	doc := `version: 1
%s
rules:
  - {name: tight, limit: 1/m, mode: enforce}
`
	for _, tc := range []struct {
		scope  string
		denied bool
	}{
		{"", true},
		{"defaults: {mode: shadow}", true}, // the rule's own mode wins over a default
		{"overrides: {mode: shadow}", false},
	} {
		p := mustLoad(t, sprintf(doc, tc.scope))
		l, _ := newLimiter(t, p)
		r := req(dimensions.Facts{})
		check(t, l, r)
		d := check(t, l, r)
		if d.Allowed == tc.denied {
			t.Errorf("%q: second request allowed = %v; want %v", tc.scope, d.Allowed, !tc.denied)
		}
	}
}

// TestGuards checks model allow and deny lists and per-request caps: a
// request outside them is refused before any counter changes, with its
// own reason.
func TestGuards(t *testing.T) {
	p := mustLoad(t, `version: 1
rules:
  - name: acme-models
    when: request.tenant == "acme"
    allow_models: [gpt-4o, "gpt-4o-mini*"]
    deny_models: [gpt-4o-mini-legacy]
    max_input_tokens: 8000
    max_output_tokens: 1000
    reject: {status: 403, body: not for you}
  - {name: acme-rpm, limit: 2/m, by: [tenant]}
`)
	l, _ := newLimiter(t, p)
	for _, tc := range []struct {
		model    string
		in, out  int64
		reason   error
		capValue int64
	}{
		{"gpt-3.5", 10, 10, ErrModelNotAllowed, 0},
		{"gpt-4o-mini-legacy", 10, 10, ErrModelDenied, 0},
		{"gpt-4o", 8001, 10, ErrInputTokensOverCap, 8000},
		{"gpt-4o-mini-2024", 10, 1001, ErrOutputTokensOverCap, 1000},
	} {
		r := &limiter.Request{Facts: dimensions.Facts{Tenant: "acme", Model: tc.model}, Estimate: limiter.Usage{InputTokens: tc.in, OutputTokens: tc.out}}
		d := check(t, l, r)
		if d.Allowed || !errors.Is(d.Limiting.Err, tc.reason) {
			t.Errorf("%s in=%d out=%d: allowed=%v err=%v; want %v", tc.model, tc.in, tc.out, d.Allowed, d.Limiting.Err, tc.reason)
			continue
		}
		var ge *GuardError
		if !errors.As(d.Limiting.Err, &ge) || ge.Rule != "acme-models" || ge.Cap != tc.capValue {
			t.Errorf("GuardError = %+v", ge)
		}
		if d.Limiting.Rule.Reject == nil || d.Limiting.Rule.Reject.Status != 403 {
			t.Errorf("reject = %+v; want the rule's 403", d.Limiting.Rule.Reject)
		}
	}
	// The four refusals charged nothing: acme still has its 2 requests.
	ok := &limiter.Request{Facts: dimensions.Facts{Tenant: "acme", Model: "gpt-4o"}, Estimate: limiter.Usage{InputTokens: 10, OutputTokens: 10}}
	if n := admitted(t, l, ok, 3); n != 2 {
		t.Errorf("admitted %d; want 2 (guards charge nothing)", n)
	}
	// Other tenants are not guarded.
	other := &limiter.Request{Facts: dimensions.Facts{Tenant: "zeta", Model: "gpt-3.5"}, Estimate: limiter.Usage{InputTokens: 1e6}}
	if d := check(t, l, other); !d.Allowed {
		t.Errorf("zeta denied: %+v", d.Limiting)
	}
	if msg := (&GuardError{Rule: "r", Reason: ErrInputTokensOverCap, Cap: 5}).Error(); msg != `policy: rule "r": input tokens over the per-request cap of 5` {
		t.Errorf("GuardError text = %q", msg)
	}
}

// TestCalendarBudget checks a monthly budget aligned to a time zone.
func TestCalendarBudget(t *testing.T) {
	p := mustLoad(t, `version: 1
defaults: {timezone: America/New_York}
rules:
  - {name: monthly-cost, limit: 3, calendar: month, unit: requests, by: [tenant]}
`)
	r := ruleNamed(t, p, "monthly-cost")
	if r.Calendar != limiter.Month || r.Location.String() != "America/New_York" || r.Algorithm != algorithms.FixedWindow || r.Limit != 3 {
		t.Fatalf("rule = %+v", r)
	}
	l, clk := newLimiter(t, p)
	// 2026-03-31 23:00 in New York is already April in UTC.
	ny, _ := time.LoadLocation("America/New_York")
	clk.t = time.Date(2026, 3, 31, 23, 0, 0, 0, ny)
	x := req(dimensions.Facts{Tenant: "t"})
	if n := admitted(t, l, x, 5); n != 3 {
		t.Errorf("March: admitted %d; want 3", n)
	}
	clk.t = time.Date(2026, 4, 1, 0, 0, 1, 0, ny)
	if n := admitted(t, l, x, 5); n != 3 {
		t.Errorf("April (local): admitted %d; want 3", n)
	}
}

// TestCompactModels checks the per-model form and its translation.
func TestCompactModels(t *testing.T) {
	p := mustLoad(t, `{"version": 1, "defaults": {"algorithm": "sliding_window"},
	  "models": [{"model": "gpt-4", "rate_limit": {"rpm": 50, "tpm": 10000}},
	             {"model": "claude 3@beta", "rate_limit": {"rpd": 1000}}]}`)
	rules := p.Rules()
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if want := []string{"model:gpt-4:rpm", "model:gpt-4:tpm", "model:claude-3_beta:rpd"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %q; want %q", names, want)
	}
	rpm, tpm := rules[0], rules[1]
	if rpm.Limit != 50 || rpm.Period != time.Minute || rpm.Unit != limiter.Requests || rpm.Algorithm != algorithms.SlidingWindow ||
		rpm.When != limiter.Equal(dimensions.Model, "gpt-4") {
		t.Errorf("rpm rule = %+v", rpm)
	}
	if tpm.Limit != 10000 || tpm.Unit != limiter.Tokens {
		t.Errorf("tpm rule = %+v", tpm)
	}
	// The same as the long form.
	long := mustLoad(t, `version: 1
defaults: {algorithm: sliding_window}
rules:
  - {name: "model:gpt-4:rpm", when: 'request.model == "gpt-4"', limit: 50/m}
  - {name: "model:gpt-4:tpm", when: 'request.model == "gpt-4"', limit: 10000/m, unit: tokens}
`).Rules()
	if !reflect.DeepEqual(long, rules[:2]) {
		t.Errorf("long form = %+v\ncompact   = %+v", long, rules[:2])
	}
}
