package policy

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

// TestPredicateIndexing checks which predicates the limiter can index.
func TestPredicateIndexing(t *testing.T) {
	doc := `version: 1
attributes: [team]
rules:
  - {name: eq, limit: 5/m, when: 'request.model == "gpt-4"'}
  - {name: eq-reversed, limit: 5/m, when: '"acme" == request.tenant'}
  - {name: eq-custom, limit: 5/m, when: 'request.team == "red"'}
  - {name: conj, limit: 5/m, when: 'request.user != "ops" && request.model == "gpt-4"'}
  - {name: method, limit: 5/m, when: 'request.method == "POST"'}
  - {name: empty, limit: 5/m, when: 'request.model == ""'}
  - {name: disj, limit: 5/m, when: 'request.model == "a" || request.model == "b"'}
`
	rules := mustLoad(t, doc).Rules()
	for _, tc := range []struct {
		rule  string
		equal bool // compiled to limiter.Equal: no CEL at run time
		index dimensions.Dimension
		value string
	}{
		{"eq", true, dimensions.Model, "gpt-4"},
		{"eq-reversed", true, dimensions.Tenant, "acme"},
		{"eq-custom", true, "team", "red"},
		{"conj", false, dimensions.Model, "gpt-4"},
		{"method", false, "", ""},
		{"empty", false, "", ""},
		{"disj", false, "", ""},
	} {
		var r limiter.Rule
		for _, x := range rules {
			if x.Name == tc.rule {
				r = x
			}
		}
		im, indexed := r.When.(limiter.IndexedMatcher)
		if tc.index == "" {
			if indexed {
				t.Errorf("%s: indexed; want a plain predicate", tc.rule)
			}
			continue
		}
		if !indexed {
			t.Errorf("%s: not indexed (%T)", tc.rule, r.When)
			continue
		}
		if d, v := im.IndexKey(); d != tc.index || v != tc.value {
			t.Errorf("%s: index %s=%q; want %s=%q", tc.rule, d, v, tc.index, tc.value)
		}
		if got := r.When == limiter.Equal(tc.index, tc.value); got != tc.equal {
			t.Errorf("%s: is limiter.Equal = %v; want %v", tc.rule, got, tc.equal)
		}
	}
}

// TestPredicateVariables evaluates predicates over every kind of variable.
func TestPredicateVariables(t *testing.T) {
	doc := `version: 1
attributes: [plan]
rules:
  - {name: r, limit: 5/m, when: 'request.user == "u" && request.api_key == "k" && request.tool == "search" && request.route == "/v1/chat" && request.client_ip == "10.0.0.1"'}
  - {name: method, limit: 5/m, when: 'request.method == "POST" && request.plan == "free"'}
  - {name: header, limit: 5/m, when: 'request.headers["x-team"] == "red, blue"'}
  - {name: has-header, limit: 5/m, when: '"x-team" in request.headers'}
  - {name: claim, limit: 5/m, when: 'auth.identity.userid == "123"'}
  - {name: claim-groups, limit: 5/m, when: '"admins" in auth.identity.groups'}
`
	p := mustLoad(t, doc)
	r := &limiter.Request{
		Facts:    dimensions.Facts{User: "u", APIKey: "k", Tool: "search", Route: "/v1/chat", ClientIP: "10.0.0.1", Method: "POST", Custom: map[string]string{"plan": "free"}},
		Header:   map[string][]string{"X-Team": {"red", "blue"}},
		Identity: map[string]any{"userid": "123", "groups": []any{"devs", "admins"}},
	}
	for _, rule := range p.Rules() {
		if !rule.When.Match(r) {
			t.Errorf("%s: no match", rule.Name)
		}
	}
	if p.EvalErrors() != 0 {
		t.Errorf("EvalErrors = %d; want 0", p.EvalErrors())
	}
	empty := &limiter.Request{}
	for _, rule := range p.Rules() {
		if rule.When.Match(empty) {
			t.Errorf("%s: matches an empty request", rule.Name)
		}
	}
}

// TestPredicateEvalError checks that a predicate that fails at run time
// does not match, is counted, reported to the hook, logged, and never
// panics.
func TestPredicateEvalError(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	var hooked []string
	p := mustLoad(t, `version: 1
rules:
  - {name: claim, limit: 5/m, when: 'auth.identity.tier == "gold"'}
  - {name: notbool, limit: 5/m, when: 'auth.identity.flag'}
`, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithEvalErrorHook(func(rule string, err error) {
		mu.Lock()
		hooked = append(hooked, rule)
		mu.Unlock()
	}))
	l, _ := newLimiter(t, p)
	r := &limiter.Request{Identity: map[string]any{"flag": "yes"}} // no tier claim; flag not a bool
	for range 3 {
		d := check(t, l, r)
		if !d.Allowed || d.Len() != 0 {
			t.Fatalf("decision = %+v; want allowed with no rule matched", d)
		}
	}
	if got := p.EvalErrors(); got != 6 {
		t.Errorf("EvalErrors = %d; want 6", got)
	}
	if len(hooked) != 6 || hooked[0] != "claim" || hooked[1] != "notbool" {
		t.Errorf("hook saw %q", hooked)
	}
	if !bytes.Contains(logs.Bytes(), []byte("rule=claim")) || !bytes.Contains(logs.Bytes(), []byte("not a bool")) {
		t.Errorf("log = %s", logs.String())
	}
	// Logged for the 1st and 2nd error of each predicate, not the 3rd.
	if n := bytes.Count(logs.Bytes(), []byte("predicate failed")); n != 4 {
		t.Errorf("%d log lines; want 4:\n%s", n, logs.String())
	}
	// The claim present: it matches.
	r.Identity["tier"] = "gold"
	if d := check(t, l, r); d.Len() != 1 {
		t.Errorf("matched %q; want claim", matched(&d))
	}
}

// TestPredicateCostLimit checks that a comprehension over a huge input
// stops at the cost limit and does not match.
func TestPredicateCostLimit(t *testing.T) {
	p := mustLoad(t, `version: 1
rules:
  - {name: loop, limit: 5/m, when: 'request.headers.all(k, request.headers.all(j, k != "" && j != ""))'}
`)
	h := map[string][]string{}
	for i := range 2000 {
		h["X-H"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))] = []string{"v"}
	}
	r := &limiter.Request{Header: h}
	if p.Rules()[0].When.Match(r) {
		t.Error("a predicate over its cost limit matched")
	}
	if p.EvalErrors() != 1 {
		t.Errorf("EvalErrors = %d; want 1", p.EvalErrors())
	}
}

func TestSuggestPredicate(t *testing.T) {
	c := &compiler{}
	_, c.varNames, _ = newEnv([]string{"plan"})
	for _, tc := range []struct{ in, want string }{
		{`request.modle == "x"`, `request.model == "x"`},
		{`request.pan == "free" && request.usr == "u"`, `request.plan == "free" && request.user == "u"`},
		{`auth.identty.userid == "1"`, `auth.identity.userid == "1"`},
		{`auth.userid == "1"`, `auth.identity.userid == "1"`},
		{`request.team == "red"`, ""}, // not a typo: an undeclared attribute
		{`request.model == "x"`, ""},
	} {
		if got := c.suggestPredicate(tc.in); got != tc.want {
			t.Errorf("suggestPredicate(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
