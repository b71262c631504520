package dimensions

import (
	"strings"
	"testing"
)

func key(dims []Dimension, f Facts) string {
	return string(AppendKey(nil, "r", dims, &f))
}

func TestAppendKeyIsCollisionFree(t *testing.T) {
	tu := []Dimension{Tenant, User}
	pairs := []struct {
		name string
		a, b Facts
		dims []Dimension
	}{
		{"separator moved between values", Facts{Tenant: "a:b", User: "c"}, Facts{Tenant: "a", User: "b:c"}, tu},
		{"pipe moved between values", Facts{Tenant: "a|b", User: "c"}, Facts{Tenant: "a", User: "b|c"}, tu},
		{"equals sign moved", Facts{Tenant: "a=b", User: "c"}, Facts{Tenant: "a", User: "b=c"}, tu},
		{"fake field injected", Facts{Tenant: "a|user=c"}, Facts{Tenant: "a", User: "c"}, tu},
		{"escape lookalike", Facts{User: "%7C"}, Facts{User: "|"}, []Dimension{User}},
		{"hash lookalike", Facts{User: "#" + strings.Repeat("0", 32)}, Facts{User: strings.Repeat("x", 300)}, []Dimension{User}},
		{"empty vs missing custom", Facts{Custom: map[string]string{"org": ""}}, Facts{Custom: map[string]string{"org": "="}}, []Dimension{"org"}},
		{"custom name with separator", Facts{Custom: map[string]string{"a=b": "c"}}, Facts{Custom: map[string]string{"a": "b=c"}}, nil},
	}
	for _, p := range pairs {
		dims := p.dims
		if dims == nil {
			dims = []Dimension{"a=b", "a"}
		}
		if ka, kb := key(dims, p.a), key(dims, p.b); ka == kb {
			t.Errorf("%s: both encode to %q", p.name, ka)
		}
	}
}

func TestAppendKeyHashesUnsafeValues(t *testing.T) {
	cases := []struct {
		name string
		v    string
	}{
		{"CR", "a\rb"}, {"LF", "a\nb"}, {"NUL", "a\x00b"}, {"invalid UTF-8", "a\xffb"},
		{"over 256 bytes", strings.Repeat("é", 129)},
	}
	for _, c := range cases {
		got := key([]Dimension{User}, Facts{User: c.v})
		if !strings.HasPrefix(got, "r|user=#") || len(got) != len("r|user=#")+32 {
			t.Errorf("%s: got %q, want r|user=# and 32 hex digits", c.name, got)
		}
		if strings.Contains(got, c.v) {
			t.Errorf("%s: raw value stored in %q", c.name, got)
		}
	}
	if got := key([]Dimension{User}, Facts{User: strings.Repeat("a", 256)}); got != "r|user="+strings.Repeat("a", 256) {
		t.Errorf("256-byte value should stay raw, got %q", got)
	}
}

func TestAppendKeyHashesAPIKeys(t *testing.T) {
	got := key([]Dimension{APIKey}, Facts{APIKey: "sk-secret"})
	if strings.Contains(got, "sk-secret") || !strings.HasPrefix(got, "r|api_key=#") {
		t.Fatalf("API key not hashed: %q", got)
	}
	if other := key([]Dimension{APIKey}, Facts{APIKey: "sk-other"}); other == got {
		t.Fatalf("different API keys share %q", got)
	}
}

func TestAppendKeyReadable(t *testing.T) {
	got := key([]Dimension{Tenant, User, Model, "org"}, Facts{Tenant: "acme", User: "alice", Model: "gpt-4o", Custom: map[string]string{"org": "x"}})
	want := "r|tenant=acme|user=alice|model=gpt-4o|org=x"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestAppendKeyDoesNotAllocate(t *testing.T) {
	f := Facts{Tenant: "acme", User: "alice", APIKey: "sk-123"}
	dims := []Dimension{Tenant, User, APIKey}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], "rule", dims, &f) }); n != 0 {
		t.Fatalf("AppendKey allocated %v times per run", n)
	}
}

func FuzzAppendKey(f *testing.F) {
	f.Add("a:b", "c", "a", "b:c")
	f.Add("a|user=c", "", "a", "c")
	f.Fuzz(func(t *testing.T, t1, u1, t2, u2 string) {
		dims := []Dimension{Tenant, User}
		a, b := key(dims, Facts{Tenant: t1, User: u1}), key(dims, Facts{Tenant: t2, User: u2})
		if (t1 == t2 && u1 == u2) != (a == b) {
			t.Fatalf("(%q,%q)->%q vs (%q,%q)->%q", t1, u1, a, t2, u2, b)
		}
		for _, c := range a {
			if c == '\r' || c == '\n' || c == 0 {
				t.Fatalf("control byte in key %q", a)
			}
		}
	})
}
