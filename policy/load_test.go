package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
)

// TestLoadErrors covers every class of error a document can have: each
// case checks the path, the message and the suggestion.
func TestLoadErrors(t *testing.T) {
	const head = "version: 1\nrules:\n"
	for _, tc := range []struct {
		name, doc             string
		path, msg, suggestion string
	}{
		// Rates.
		{"rate spelt out", head + "  - {name: a, limit: 60/hour}\n", "/rules/0/limit", `"60/hour" is not a rate`, "60/h"},
		{"rate not canonical", head + "  - {name: a, limit: 100/60s}\n", "/rules/0/limit", "canonical form", "100/m"},
		{"rate nonsense", head + "  - {name: a, limit: lots}\n", "/rules/0/limit", `"lots" is not a rate: write <limit>/<period>`, ""},
		{"window 0", head + "  - {name: a, limit: 100/0m}\n", "/rules/0/limit", "window of 0", ""},
		{"negative limit", head + "  - {name: a, limit: -5/m}\n", "/rules/0/limit", "negative limit", ""},
		{"limit over 2^53", head + "  - {name: a, limit: 9007199254740993/s}\n", "/rules/0/limit", "over the largest, 2^53", ""},
		{"window over 366d", head + "  - {name: a, limit: 1/400d}\n", "/rules/0/limit", "over 366d", ""},
		{"number without period", head + "  - {name: a, limit: 50}\n", "/rules/0/limit", "limit 50 has no period", ""},
		{"negative number", head + "  - {name: a, limit: -1, calendar: day}\n", "/rules/0/limit", "limit -1 is negative", ""},
		{"calendar with a rate", head + "  - {name: a, limit: 5000/d, calendar: day}\n", "/rules/0/limit", "count per calendar period", "5000"},
		{"calendar with token bucket", head + "  - {name: a, limit: 5, calendar: day, algorithm: token_bucket}\n", "/rules/0/calendar", "calendar windows count with fixed_window", ""},
		{"bad time zone", head + "  - {name: a, limit: 5, calendar: day, timezone: Europe/Berln}\n", "/rules/0/timezone", "not an IANA time zone", ""},
		{"timezone without calendar", head + "  - {name: a, limit: 5/m, timezone: UTC}\n", "/rules/0/timezone", "calendar windows only", ""},
		{"burst with fixed window", head + "  - {name: a, limit: 5/m, algorithm: fixed_window, burst: 10}\n", "/rules/0/burst", "burst applies to token_bucket and gcra", ""},
		{"burst 0", head + "  - {name: a, limit: 5/m, burst: 0}\n", "/rules/0/burst", "burst 0 must be at least 1", ""},
		// Names of things.
		{"algorithm typo", head + "  - {name: a, limit: 5/m, algorithm: token_buket}\n", "/rules/0/algorithm", `"token_buket" is not an algorithm`, "token_bucket"},
		{"algorithm unknown", head + "  - {name: a, limit: 5/m, algorithm: magic}\n", "/rules/0/algorithm", "want fixed_window, sliding_window, token_bucket, gcra or concurrency", ""},
		{"unit typo", head + "  - {name: a, limit: 5/m, unit: tokns}\n", "/rules/0/unit", `"tokns" is not a unit`, "tokens"},
		{"unit plural", head + "  - {name: a, limit: 5/m, unit: output_token}\n", "/rules/0/unit", "is not a unit", "output_tokens"},
		{"mode typo", head + "  - {name: a, limit: 5/m, mode: shadw}\n", "/rules/0/mode", `"shadw" is not a mode`, "shadow"},
		{"mode read as a boolean", head + "  - {name: a, limit: 5/m, mode: off}\n", "/rules/0/mode", "YAML reads an unquoted off as a boolean", "off"},
		{"store error mode typo", head + "  - {name: a, limit: 5/m, on_store_error: alow}\n", "/rules/0/on_store_error", "is not a store-error mode", "allow"},
		{"timing typo", head + "  - {name: a, limit: 5/m, timing: afterwards}\n", "/rules/0/timing", "is not a timing", ""},
		{"calendar typo", head + "  - {name: a, limit: 5, calendar: montly}\n", "/rules/0/calendar", "is not a calendar period", "month"},
		{"dimension typo", head + "  - {name: a, limit: 5/m, by: [tennant]}\n", "/rules/0/by/0", `"tennant" is not a dimension`, "tenant"},
		{"dimension typo in defaults", "version: 1\ndefaults: {by: [apikey]}\nrules: []\n", "/defaults/by/0", "is not a dimension", "api_key"},
		{"dimension bad shape", head + "  - {name: a, limit: 5/m, by: [Team-ID]}\n", "/rules/0/by/0", "is not a dimension", ""},
		{"attribute predefined", "version: 1\nattributes: [user]\n", "/attributes/0", "is predefined", ""},
		{"bad rule name", head + "  - {name: 'my rule!', limit: 5/m}\n", "/rules/0/name", "is not a rule name", "my-rule_"},
		// Structure.
		{"unknown field", head + "  - {name: a, limt: 5/m}\n", "/rules/0/limt", `unknown field "limt"`, "limit"},
		{"unknown top-level field", "version: 1\nrule: []\n", "/rule", `unknown field "rule"`, "rules"},
		{"missing name", head + "  - {limit: 5/m}\n", "/rules/0", `missing required field "name"`, ""},
		{"missing version", "rules: []\n", "", `missing required field "version"`, ""},
		{"wrong version", "version: 2\n", "/version", "version 2 is not supported: the only version is 1", ""},
		{"version as a string", "version: '1'\n", "/version", `version "1" is not supported`, ""},
		{"store error mode read as a boolean", head + "  - {name: a, limit: 5/m, on_store_error: no}\n", "/rules/0/on_store_error", "is the boolean false", ""},
		{"wrong type", head + "  - {name: a, limit: 5/m, by: user}\n", "/rules/0/by", "expected array", ""},
		{"empty document", "", "", "the document is empty", ""},
		{"not a mapping", "- a\n- b\n", "", "expected object", ""},
		{"not YAML", "version: [1\n", "", "not a YAML or JSON document", ""},
		{"duplicate key", "version: 1\nversion: 1\n", "", "duplicate key", ""},
		{"duplicate key in JSON", `{"version": 1, "rules": [{"name": "a", "limit": "5/m", "limit": "6/m"}]}`, "", "duplicate key", ""},
		{"rule without limit", head + "  - {name: a}\n", "/rules/0", "has neither limit, parent nor guard fields", ""},
		// Consistency.
		{"duplicate names", head + "  - {name: a, limit: 5/m}\n  - {name: a, limit: 6/m}\n", "/rules/1/name", `duplicate rule name "a" (first at /rules/0)`, ""},
		{"duplicate with compact form", "version: 1\nmodels: [{model: m, rate_limit: {rpm: 5}}]\nrules: [{name: 'model:m:rpm', limit: 5/m}]\n", "/rules/0/name", "duplicate rule name", ""},
		{"duplicate compact models", "version: 1\nmodels: [{model: m, rate_limit: {rpm: 5}}, {model: m, rate_limit: {rpm: 6}}]\n", "/models/1/model", `duplicate rule name "model:m:rpm" (first at /models/0)`, ""},
		{"duplicate groups", "version: 1\ngroups: [{name: g, rules: []}, {name: g, rules: []}]\n", "/groups/1/name", `duplicate group name "g" (first at /groups/0)`, ""},
		{"share above 1", head + "  - {name: p, limit: 5/m}\n  - {name: c, parent: p, share: 1.5}\n", "/rules/1/share", "share 1.5 is outside (0, 1]", ""},
		{"share 0", head + "  - {name: p, limit: 5/m}\n  - {name: c, parent: p, share: 0}\n", "/rules/1/share", "share 0 is outside (0, 1]", ""},
		{"share too small", head + "  - {name: p, limit: 5/m}\n  - {name: c, parent: p, share: 0.1}\n", "/rules/1/share", "less than 1", ""},
		{"share without parent", head + "  - {name: a, limit: 5/m, share: 0.5}\n", "/rules/0/share", "share needs a parent", ""},
		{"parent without share", head + "  - {name: p, limit: 5/m}\n  - {name: c, parent: p}\n", "/rules/1", "needs share", ""},
		{"missing parent", head + "  - {name: team, limit: 5/m}\n  - {name: c, parent: teem, share: 0.5}\n", "/rules/1/parent", `no rule is named "teem"`, "team"},
		{"parent cycle", head + "  - {name: a, parent: b, share: 0.5}\n  - {name: b, parent: a, share: 0.5}\n", "/rules/0/parent", "parent cycle: a -> b -> a", ""},
		{"own parent", head + "  - {name: a, parent: a, share: 0.5}\n", "/rules/0/parent", "parent cycle: a -> a", ""},
		{"parent and limit", head + "  - {name: p, limit: 5/m}\n  - {name: c, parent: p, share: 0.5, limit: 1/m}\n", "/rules/1/limit", "takes its limit from the parent", ""},
		{"child sets unit", head + "  - {name: p, limit: 5/m}\n  - {name: c, parent: p, share: 0.5, unit: tokens}\n", "/rules/1/unit", "takes unit from the parent", ""},
		{"parent is a guard", head + "  - {name: g, max_input_tokens: 5}\n  - {name: c, parent: g, share: 0.5}\n", "/rules/1/parent", "is a guard rule", ""},
		{"guard with limit", head + "  - {name: g, limit: 5/m, deny_models: [x]}\n", "/rules/0/limit", "guard rule", ""},
		{"guard with unit", head + "  - {name: g, unit: tokens, deny_models: [x]}\n", "/rules/0/unit", "does not apply", ""},
		{"guard cap 0", head + "  - {name: g, max_output_tokens: 0}\n", "/rules/0/max_output_tokens", "must be at least 1", ""},
		{"guard bad pattern", head + "  - {name: g, allow_models: ['gpt-*-mini']}\n", "/rules/0/allow_models/0", "only a final *", ""},
		{"concurrency delayed", head + "  - {name: a, limit: 5/m, algorithm: concurrency, unit: output_tokens}\n", "/rules/0", "cannot be delayed", ""},
		// Predicates.
		{"predicate syntax", head + "  - {name: a, limit: 5/m, when: 'request.model = \"x\"'}\n", "/rules/0/when", "predicate does not compile", ""},
		{"predicate typo", head + "  - {name: a, limit: 5/m, when: 'request.modle == \"x\"'}\n", "/rules/0/when", "undeclared reference", `request.model == "x"`},
		{"predicate type", head + "  - {name: a, limit: 5/m, when: 'request.model == 1'}\n", "/rules/0/when", "no matching overload", ""},
		{"predicate not bool", head + "  - {name: a, limit: 5/m, when: 'request.model'}\n", "/rules/0/when", "predicate is a string, not a bool", ""},
		{"group predicate", "version: 1\ngroups: [{name: g, when: 'request.tenat == \"a\"', rules: []}]\n", "/groups/0/when", "does not compile", `request.tenant == "a"`},
		// Rejections.
		{"reject status", head + "  - {name: a, limit: 5/m, reject: {status: 200}}\n", "/rules/0/reject/status", "not a rejection status", ""},
		{"reject header name", head + "  - {name: a, limit: 5/m, reject: {headers: {'Bad Header': x}}}\n", "/rules/0/reject/headers/Bad Header", "not an HTTP header name", ""},
		{"reject unknown field", head + "  - {name: a, limit: 5/m, reject: {code: 429}}\n", "/rules/0/reject/code", "unknown field", ""},
		// Compact form.
		{"compact typo", "version: 1\nmodels: [{model: m, rate_limit: {rmp: 5}}]\n", "/models/0/rate_limit/rmp", "unknown field", "rpm"},
		{"compact empty", "version: 1\nmodels: [{model: m, rate_limit: {}}]\n", "/models/0/rate_limit", "rate_limit is empty", ""},
		{"compact negative", "version: 1\nmodels: [{model: m, rate_limit: {rpm: -1}}]\n", "/models/0/rate_limit/rpm", "rpm -1 is negative", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Load succeeded with %d rules; want an error at %q", len(p.Rules()), tc.path)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			for _, e := range Errors(err) {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					if e.Suggestion != tc.suggestion {
						t.Errorf("suggestion = %q; want %q (%v)", e.Suggestion, tc.suggestion, e)
					}
					return
				}
			}
			t.Errorf("got %v\nwant an error at %q containing %q", err, tc.path, tc.msg)
		})
	}
}

// TestErrorFormat checks the exact text of an error: path, value,
// suggestion.
func TestErrorFormat(t *testing.T) {
	doc := "version: 1\nrules:\n" + strings.Repeat("  - {name: r, limit: 1/m}\n", 0) +
		"  - {name: a, limit: 1/m}\n  - {name: b, limit: 1/m}\n  - {name: c, limit: 1/m}\n  - {name: d, limit: 60/hour}\n"
	_, err := Load([]byte(doc))
	want := `policy: /rules/3/limit: "60/hour" is not a rate; did you mean "60/h"?`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "/rules/3/limit" || e.Value != "60/hour" || e.Suggestion != "60/h" {
		t.Errorf("*Error = %+v", e)
	}
}

// TestLoadReturnsAllErrors checks that one load reports every problem,
// schema and semantic, in document order.
func TestLoadReturnsAllErrors(t *testing.T) {
	doc := `version: 1
rules:
  - {name: a, limit: 60/hour}
  - {name: b, limit: 5/m, algorithm: token_buket}
  - {name: a, limit: 5/m}
  - {name: c, parent: nobody, share: 0.5}
  - {name: d, limit: 5/m, when: 'request.nope == "x"'}
  - {name: e, limit: 5/m, colour: blue}
`
	_, err := Load([]byte(doc))
	var got []string
	for _, e := range Errors(err) {
		got = append(got, e.Path)
	}
	want := []string{"/rules/0/limit", "/rules/1/algorithm", "/rules/2/name", "/rules/3/parent", "/rules/4/when", "/rules/5/colour"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q\nwant    %q\n%v", got, want, err)
	}
}

// TestYAMLAndJSONMeanTheSame loads one policy in both syntaxes.
func TestYAMLAndJSONMeanTheSame(t *testing.T) {
	y := `version: 1
defaults: {algorithm: sliding_window}
rules:
  - name: gpt4-tpm
    when: request.model == "gpt-4"
    limit: 10000/m
    unit: tokens
    by: [api_key]
    reject: {status: 429, body: '{"error":"slow down"}', headers: {x-reason: tpm}}
`
	j := `{"version": 1, "defaults": {"algorithm": "sliding_window"}, "rules": [{"name": "gpt4-tpm",
	"when": "request.model == \"gpt-4\"", "limit": "10000/m", "unit": "tokens", "by": ["api_key"],
	"reject": {"status": 429, "body": "{\"error\":\"slow down\"}", "headers": {"x-reason": "tpm"}}}]}`
	a, b := mustLoad(t, y).Rules(), mustLoad(t, j).Rules()
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("rules: %d and %d; want 1 each", len(a), len(b))
	}
	ra, rb := a[0], b[0]
	if !reflect.DeepEqual(ra.When, rb.When) {
		t.Errorf("when differs: %#v vs %#v", ra.When, rb.When)
	}
	ra.When, rb.When = nil, nil
	if !reflect.DeepEqual(ra, rb) {
		t.Errorf("YAML: %+v\nJSON: %+v", ra, rb)
	}
	want := limiter.Rule{Name: "gpt4-tpm", Algorithm: algorithms.SlidingWindow, Limit: 10000, Period: 60e9, Unit: limiter.Tokens,
		By: ra.By, Reject: &limiter.Rejection{Status: 429, Body: []byte(`{"error":"slow down"}`), Headers: map[string]string{"X-Reason": "tpm"}}}
	if !reflect.DeepEqual(ra, want) {
		t.Errorf("rule = %+v\nwant   %+v", ra, want)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nrules: [{name: a, limit: 5/m}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadFile(path)
	if err != nil || len(p.Rules()) != 1 {
		t.Fatalf("LoadFile = %v, %v", p, err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v; want a not-exist error that is not ErrInvalid", err)
	}
}

func TestSchemaReferenceForEditors(t *testing.T) {
	// A document may name the schema, for editors.
	mustLoad(t, `{"$schema": "https://raw.githubusercontent.com/tollgate-go/tollgate/main/policy/schema/tollgate.schema.json", "version": 1}`)
	disk, err := os.ReadFile("schema/tollgate.schema.json")
	if err != nil || string(disk) != string(Schema()) {
		t.Errorf("embedded Schema differs from schema/tollgate.schema.json (%v)", err)
	}
}

// TestSchemaErrorsInOneRule checks that several problems in one rule are
// all reported.
func TestSchemaErrorsInOneRule(t *testing.T) {
	_, err := Load([]byte("version: 1\nattributes: [headers]\nrules:\n  - {limit: 60/hour, unit: tokns}\n"))
	var got []string
	for _, e := range Errors(err) {
		got = append(got, e.Path)
	}
	want := []string{"/attributes/0", "/rules/0", "/rules/0/limit", "/rules/0/unit"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q; want %q\n%v", got, want, err)
	}
}
