package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that Load never panics, and that every rejection is a
// set of *Error values, each with a JSON pointer path.
//
//	go test ./policy -run=^$ -fuzz=^FuzzLoad$ -fuzztime=10s
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"", "version: 1", "{}", "[]", "null", "version: 1\nrules: [{name: a, limit: 60/hour}]",
		"version: 1\nrules: [{name: a, parent: b, share: 0.5}, {name: b, parent: a, share: 0.5}]",
		"version: 1\nrules: [{name: a, limit: 5/m, when: 'request.model == \"x\" && auth.identity.a > 1'}]",
		"version: 1\nmodels: [{model: m, rate_limit: {rpm: 1}}]",
		"version: 1\ngroups: [{name: g, when: 'true', overrides: {mode: shadow}, rules: [{name: x, limit: 1, calendar: week}]}]",
		"version: 1\nrules: [{name: g, allow_models: ['a*'], max_input_tokens: 3}]",
		"a: &a [*a]", "version: 1\nrules: [{name: a, limit: 1/m, by: [user, user]}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(data)
		if err == nil {
			if p == nil {
				t.Fatal("nil policy and nil error")
			}
			_ = p.Rules()
			return
		}
		if p != nil {
			t.Fatal("a policy and an error")
		}
		errs := Errors(err)
		if len(errs) == 0 {
			t.Fatalf("rejection without an *Error: %v", err)
		}
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) && len(joined.Unwrap()) != len(errs) {
			t.Fatalf("%d errors, %d of them *Error: %v", len(joined.Unwrap()), len(errs), err)
		}
		for _, e := range errs {
			if e.Path != "" && e.Path[0] != '/' {
				t.Fatalf("path %q is not a JSON pointer: %v", e.Path, e)
			}
			if e.Message == "" {
				t.Fatalf("empty message at %q", e.Path)
			}
		}
	})
}
