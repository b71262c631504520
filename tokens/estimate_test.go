package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

type referenceCounts struct {
	TextParts      int   `json:"text_parts"`
	TextBytes      int64 `json:"text_bytes"`
	TextO200k      int64 `json:"text_o200k_tokens"`
	ExtraJSONBytes int64 `json:"extra_json_bytes"`
	ExtraJSONO200k int64 `json:"extra_json_o200k_tokens"`
	NonTextParts   int   `json:"non_text_parts"`
}

type fixtureDetails struct {
	Kind           string           `json:"kind"`
	MaxOutput      int64            `json:"max_output_tokens"`
	ThinkingBudget int64            `json:"thinking_budget"`
	Stream         bool             `json:"stream"`
	IncludeUsage   bool             `json:"include_usage"`
	Reference      *referenceCounts `json:"reference_counts"`
}

func loadDetails(t testing.TB) map[string]fixtureDetails {
	t.Helper()
	var m map[string]fixtureDetails
	if err := json.Unmarshal(readFixture(t, "expected_details.json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// byteCounter counts bytes: with it, an estimate is exactly the number of
// bytes of the strings that were counted.
type byteCounter struct{}

func (byteCounter) CountTokens(s string) int64 { return int64(len(s)) }

// estimateFixture runs the estimator that fits the fixture's kind.
func estimateFixture(name string, body []byte, e Estimator) (int64, error) {
	switch {
	case strings.HasPrefix(name, "mcp_"), strings.HasPrefix(name, "a2a_"):
		return PayloadTokens(body, e)
	}
	path := ""
	if strings.HasPrefix(name, "gemini_") {
		path = "/v1beta/models/gemini-2.5-flash:generateContent"
	}
	r, err := EstimateRequest(path, body, e)
	return r.Input, err
}

// estimatedFixtures are the fixtures with reference_counts, and whether
// extra_json (tools, structuredContent, data parts) is part of what the
// estimator counts for them.
var estimatedFixtures = []string{
	"openai_chat_request.json",
	"anthropic_messages_request.json",
	"gemini_generate_request.json",
	"mcp_tools_call_result.json",
	"mcp_prompts_get_result.json",
	"a2a_message_send_request.json",
}

// TestEstimateCountsWhatTheReferenceCounts checks, with a byte-counting
// estimator, that exactly the reference strings are counted.
func TestEstimateCountsWhatTheReferenceCounts(t *testing.T) {
	details := loadDetails(t)
	for _, name := range estimatedFixtures {
		ref := details[name].Reference
		got, err := estimateFixture(name, readFixture(t, name), byteCounter{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := ref.TextBytes + ref.ExtraJSONBytes; got != want {
			t.Errorf("%s: counted %d bytes, want text %d + extra JSON %d = %d", name, got, ref.TextBytes, ref.ExtraJSONBytes, want)
		}
	}
}

// TestEstimateAccuracy reports the Heuristic's error per fixture against the
// o200k reference and requires it within ±15%.
func TestEstimateAccuracy(t *testing.T) {
	details := loadDetails(t)
	t.Logf("%-34s %8s %9s %7s", "fixture", "estimate", "reference", "error")
	for _, name := range estimatedFixtures {
		ref := details[name].Reference
		got, err := estimateFixture(name, readFixture(t, name), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := ref.TextO200k + ref.ExtraJSONO200k
		e := 100 * float64(got-want) / float64(want)
		t.Logf("%-34s %8d %9d %+6.1f%%", name, got, want, e)
		if math.Abs(e) > 15 {
			t.Errorf("%s: estimate %d, reference %d: error %+.1f%% is over ±15%%", name, got, want, e)
		}
	}
}

func TestEstimateRequestFields(t *testing.T) {
	details := loadDetails(t)
	for _, tc := range []struct {
		name, path, model string
	}{
		{"openai_chat_request.json", "/v1/chat/completions", "gpt-4o-mini"},
		{"anthropic_messages_request.json", "/v1/messages", "claude-sonnet-4-5-20250929"},
		{"gemini_generate_request.json", "/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash"},
	} {
		d := details[tc.name]
		r, err := EstimateRequest(tc.path, readFixture(t, tc.name), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := fmt.Sprintf("model=%s max=%d thinking=%d stream=%v usage=%v nontext=%d", r.Model, r.MaxOutput, r.ThinkingBudget, r.Stream, r.IncludeUsage, r.NonText)
		want := fmt.Sprintf("model=%s max=%d thinking=%d stream=%v usage=%v nontext=%d", tc.model, d.MaxOutput, d.ThinkingBudget, d.Stream, d.IncludeUsage, d.Reference.NonTextParts)
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, want)
		}
	}
}

func TestEstimateRequestShapes(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		wantBytes        int64 // with byteCounter
		wantMax          int64
		wantStream       bool
		wantMessages     int
	}{
		{"completions string", "/v1/completions", `{"model":"m","prompt":"hello","max_tokens":7}`, 5, 7, false, 0},
		{"completions list and ids", "/v1/completions", `{"prompt":["ab","cd"],"max_tokens":"9"}`, 4, 0, false, 0},
		{"completions token ids", "/v1/completions", `{"prompt":[1,2,3]}`, 3, 0, false, 0},
		{"embeddings", "/v1/embeddings", `{"model":"text-embedding-3-small","input":["abc","de"]}`, 5, 0, false, 0},
		{"responses string", "/v1/responses", `{"instructions":"sys","input":"hello","max_output_tokens":100,"stream":true}`, 8, 100, true, 0},
		{"responses items", "/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]},{"type":"function_call","arguments":"{}"},{"type":"function_call_output","output":"ok"}]}`, 6, 0, false, 3},
		{"anthropic string system", "/v1/messages", `{"system":"abc","messages":[{"role":"user","content":"de"}],"max_tokens":1}`, 5, 1, false, 1},
		{"anthropic thinking and tool result string", "/v1/messages", `{"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"hmm"}]},{"role":"user","content":[{"type":"tool_result","content":"res"}]}]}`, 6, 0, false, 2},
		{"ollama default stream", "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hey"}],"options":{"num_predict":42}}`, 3, 42, true, 1},
		{"ollama stream false", "/api/chat", `{"messages":[],"stream":false}`, 0, 0, false, 0},
		{"bedrock converse", "/model/x/converse", `{"system":[{"text":"ab"}],"messages":[{"role":"user","content":[{"text":"cd"}]}],"inferenceConfig":{"maxTokens":5}}`, 4, 5, false, 1},
		{"gemini function call and response", "/v1beta/models/g:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"functionCall":{"name":"f","args":{"a":1}}},{"functionResponse":{"name":"f","response":{"b":2}}}]}]}`, 14, 0, true, 1},
		{"hostile max tokens", "", `{"max_tokens":-5,"max_completion_tokens":1e30,"messages":[{"content":"x"}]}`, 1, 0, false, 1},
		{"content of unexpected types", "", `{"messages":[{"content":5},{"content":{"x":1}},null,"str"]}`, 3, 0, false, 2},
		{"messages not an array", "", `{"messages":{"content":"ab"},"stream":"yes"}`, 2, 0, false, 0},
	} {
		r, err := EstimateRequest(tc.path, []byte(tc.body), byteCounter{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := fmt.Sprintf("bytes=%d max=%d stream=%v messages=%d", r.Input, r.MaxOutput, r.Stream, r.Messages)
		want := fmt.Sprintf("bytes=%d max=%d stream=%v messages=%d", tc.wantBytes, tc.wantMax, tc.wantStream, tc.wantMessages)
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, want)
		}
	}
}

func TestEstimateRequestMalformed(t *testing.T) {
	for _, body := range []string{"", "[]", "null", `{"messages":`, `"str"`, `{"a":1} trailing`, `{"a":1,}`} {
		if _, err := EstimateRequest("", []byte(body), nil); !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("EstimateRequest(%q) error = %v, want ErrMalformedRequest", body, err)
		}
	}
}

func TestHeuristic(t *testing.T) {
	for _, tc := range []struct {
		text     string
		min, max int64
	}{
		{"", 0, 0},
		{"hello", 1, 1},
		{"Hello, world!", 3, 5},
		{"<|endoftext|>", 3, 8},
		{"速率限制器保护共享容量", 6, 11},
		{strings.Repeat("-", 80), 1, 4},
		{"1843920", 3, 3},
		{"\xff\xfe invalid utf-8", 3, 8},
	} {
		got := Heuristic{}.CountTokens(tc.text)
		if got < tc.min || got > tc.max {
			t.Errorf("CountTokens(%q) = %d, want in [%d, %d]", tc.text, got, tc.min, tc.max)
		}
	}
}

func TestModelFromPath(t *testing.T) {
	for path, want := range map[string]string{
		"/v1beta/models/gemini-2.5-flash:generateContent":                                      "gemini-2.5-flash",
		"/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse":                          "gemini-2.5-pro",
		"/v1/projects/p/locations/l/publishers/google/models/gemini-2.0-flash:generateContent": "gemini-2.0-flash",
		"/v1/chat/completions": "",
		"":                     "",
	} {
		if got := ModelFromPath(path); got != want {
			t.Errorf("ModelFromPath(%q) = %q, want %q", path, got, want)
		}
	}
}
