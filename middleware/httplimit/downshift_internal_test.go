package httplimit

import (
	"strings"
	"testing"
)

func TestModelSpans(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // the quoted values the spans cover
	}{
		{"plain", `{"model":"gpt-4o","max_tokens":10}`, []string{`"gpt-4o"`}},
		{"blanks", "{ \"model\" \t:\n \"gpt-4o\" }", []string{`"gpt-4o"`}},
		{"escaped value", `{"model":"gpt\u002d4o"}`, []string{`"gpt\u002d4o"`}},
		{"escaped key", `{"mod\u0065l":"gpt-4o"}`, []string{`"gpt-4o"`}},
		{"key case", `{"Model":"gpt-4o"}`, []string{`"gpt-4o"`}},
		{"duplicates", `{"model":"a","x":1,"model":"b"}`, []string{`"a"`, `"b"`}},
		{"nested only", `{"messages":[{"model":"gpt-4o"}],"metadata":{"model":"gpt-4o"}}`, nil},
		{"after nested", `{"messages":[{"model":"x"},["model","y"]],"model":"gpt-4o"}`, []string{`"gpt-4o"`}},
		{"model as a value", `{"name":"model","tag":"gpt-4o"}`, nil},
		{"not a string", `{"model":null,"x":{"model":"gpt-4o"}}`, nil},
		{"object value", `{"model":{"name":"gpt-4o"}}`, nil},
		{"array body", `[{"model":"gpt-4o"}]`, nil},
		{"truncated after", `{"model":"gpt-4o","messages":[{"content":"lor`, []string{`"gpt-4o"`}},
		{"truncated inside", `{"max_tokens":1,"model":"gpt-4`, nil},
		{"invalid", `{"model":"gpt-4o",,}`, []string{`"gpt-4o"`}},
		{"empty", ``, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range modelSpans([]byte(tc.body)) {
				got = append(got, tc.body[s.start:s.end])
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("modelSpans(%s) = %q, want %q", tc.body, got, tc.want)
			}
		})
	}
}

func TestReplaceModelSegments(t *testing.T) {
	for _, tc := range []struct {
		path, raw, want, wantRaw string
	}{
		{"/v1beta/models/gemini-2.5-pro:generateContent", "/v1beta/models/gemini-2.5-pro%3AgenerateContent",
			"/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash%3AgenerateContent"},
		{"/v1beta/models/gemini-2.5-pro:streamGenerateContent", "/v1beta/models/gemini%2D2.5-pro:streamGenerateContent",
			"/v1beta/models/gemini-2.5-flash:streamGenerateContent", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"},
		{"/v1/models/gemini-2.5-pro", "/v1/models/gemini-2.5-pro", "/v1/models/gemini-2.5-flash", "/v1/models/gemini-2.5-flash"},
		// The escaped path names another model: dropped, for EscapedPath
		// to encode Path.
		{"/v1beta/models/gemini-2.5-pro:x", "/v1beta/models/other%3Ax", "/v1beta/models/gemini-2.5-flash:x", ""},
	} {
		if got := replaceModelSegment(tc.path, "gemini-2.5-flash"); got != tc.want {
			t.Errorf("replaceModelSegment(%s) = %s, want %s", tc.path, got, tc.want)
		}
		if got := replaceRawModelSegment(tc.raw, "gemini-2.5-pro", "gemini-2.5-flash"); got != tc.wantRaw {
			t.Errorf("replaceRawModelSegment(%s) = %s, want %s", tc.raw, got, tc.wantRaw)
		}
	}
}
