package tokens

import (
	"fmt"
	"strings"
	"testing"
)

func meterString(body string, opts ...MeterOption) string {
	m := NewMeter(opts...)
	m.Write([]byte(body))
	u, ok := m.Usage()
	if !ok {
		return "none"
	}
	return fmt.Sprintf("in=%d out=%d cached=%d reasoning=%d total=%d", u.Input, u.Output, u.CachedInput, u.Reasoning, u.Total)
}

func TestUsageNormalization(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"openai details", `{"usage":{"prompt_tokens":1254,"completion_tokens":389,"total_tokens":1643,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":256}}}`,
			"in=1254 out=389 cached=1024 reasoning=256 total=1643"},
		{"openai-compatible total above prompt+completion is hidden reasoning", `{"usage":{"prompt_tokens":758,"completion_tokens":102,"total_tokens":1725}}`,
			"in=758 out=967 cached=0 reasoning=0 total=1725"},
		{"vLLM top-level reasoning_tokens", `{"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14,"reasoning_tokens":4}}`,
			"in=5 out=9 cached=0 reasoning=4 total=14"},
		{"embeddings", `{"usage":{"prompt_tokens":17,"total_tokens":17}}`, "in=17 out=0 cached=0 reasoning=0 total=17"},
		{"responses", `{"error":null,"usage":{"input_tokens":2210,"input_tokens_details":{"cached_tokens":1920},"output_tokens":612,"output_tokens_details":{"reasoning_tokens":448},"total_tokens":2822}}`,
			"in=2210 out=612 cached=1920 reasoning=448 total=2822"},
		{"anthropic cache fields", `{"type":"message","usage":{"input_tokens":21,"cache_creation_input_tokens":5,"cache_read_input_tokens":2048,"output_tokens":143}}`,
			"in=2074 out=143 cached=2048 reasoning=0 total=2217"},
		{"bedrock cache", `{"usage":{"inputTokens":31,"outputTokens":118,"totalTokens":149,"cacheReadInputTokens":100,"cacheWriteInputTokens":7}}`,
			"in=138 out=118 cached=100 reasoning=0 total=256"},
		{"gemini tool use and thoughts", `{"usageMetadata":{"promptTokenCount":10,"toolUsePromptTokenCount":3,"candidatesTokenCount":4,"thoughtsTokenCount":6,"cachedContentTokenCount":8}}`,
			"in=13 out=10 cached=8 reasoning=6 total=23"},
		{"ollama", `{"done":true,"prompt_eval_count":26,"eval_count":298}`, "in=26 out=298 cached=0 reasoning=0 total=324"},
		{"explicit zero is zero", `{"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`, "in=0 out=0 cached=0 reasoning=0 total=0"},
		{"integral float accepted", `{"usage":{"prompt_tokens":12.0,"completion_tokens":3}}`, "in=12 out=3 cached=0 reasoning=0 total=15"},
		{"null counts are absent", `{"usage":{"prompt_tokens":null,"completion_tokens":3}}`, "in=0 out=3 cached=0 reasoning=0 total=3"},
		{"usage null", `{"usage":null}`, "none"},
		{"usage empty", `{"usage":{}}`, "none"},
		{"error body", `{"error":{"message":"x","type":"tokens","code":"rate_limit_exceeded"}}`, "none"},
	} {
		if got := meterString(tc.body); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestUsageHostileValues(t *testing.T) {
	huge := fmt.Sprintf("in=%d out=1 cached=0 reasoning=0 total=%d", MaxCount, MaxCount+1)
	for _, tc := range []struct{ name, value, want string }{
		{"negative", `-5`, "none"},
		{"fraction", `12.5`, "none"},
		{"exponent", `1e30`, "none"},
		{"string", `"12"`, "none"},
		{"bool", `true`, "none"},
		{"object", `{}`, "none"},
		{"huge integer clamps", `123456789012345678901234567890`, huge},
		{"max int64", `9223372036854775807`, huge},
		{"zero", `0`, "in=0 out=1 cached=0 reasoning=0 total=1"},
	} {
		for _, shape := range []string{
			`{"usage":{"prompt_tokens":%s,"completion_tokens":1}}`,
			`{"usage":{"input_tokens":%s,"output_tokens":1}}`,
			`{"usageMetadata":{"promptTokenCount":%s,"candidatesTokenCount":1}}`,
			`{"prompt_eval_count":%s,"eval_count":1}`,
			`{"usage":{"inputTokens":%s,"outputTokens":1}}`,
		} {
			body := fmt.Sprintf(shape, tc.value)
			for _, framing := range []string{"json", "sse"} {
				if framing == "sse" && strings.Contains(body, "eval_count") {
					continue // Ollama's native counters come in JSON and NDJSON only
				}
				b := body
				opt := WithFormat(FormatJSON)
				if framing == "sse" {
					b, opt = "data: "+body+"\n\n", WithFormat(FormatSSE)
				}
				if got := meterString(b, opt); got != tc.want {
					t.Errorf("%s in %s (%s): got %s, want %s", tc.name, body, framing, got, tc.want)
				}
			}
		}
	}
	// A hostile snapshot does not erase a good one before it.
	good := "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n"
	bad := "data: {\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":1}}\n\n"
	if got, want := meterString(good+bad, WithFormat(FormatSSE)), "in=5 out=1 cached=0 reasoning=0 total=6"; got != want {
		t.Errorf("good then bad snapshot: got %s, want %s", got, want)
	}
}

func TestMeterStreamRules(t *testing.T) {
	sse := WithContentType("text/event-stream")
	for _, tc := range []struct {
		name, body string
		opt        MeterOption
		want       string
	}{
		{"vLLM continuous usage: last snapshot wins, never summed",
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":0,\"total_tokens\":7}}\n\n" +
				"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\"total_tokens\":12}}\n\n" +
				"data: [DONE]\n\n", sse, "in=7 out=5 cached=0 reasoning=0 total=12"},
		{"anthropic full delta overwrites field by field",
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":90,\"output_tokens\":1}}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":12,\"output_tokens\":30}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40}}\n\n", sse,
			"in=102 out=40 cached=90 reasoning=0 total=142"},
		{"data padded with trailing spaces (Anthropic)", "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}    \n\n", sse,
			"in=0 out=15 cached=0 reasoning=0 total=15"},
		{"event longer than bufio.Scanner's 64 KiB", "data: {\"pad\":\"" + strings.Repeat("x", 100<<10) + "\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n", sse,
			"in=1 out=2 cached=0 reasoning=0 total=3"},
		{"multi-line data is joined", "data: {\"usage\":\ndata: {\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n", sse,
			"in=1 out=2 cached=0 reasoning=0 total=3"},
		{"lone CR line endings", "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\r\r", sse,
			"in=1 out=2 cached=0 reasoning=0 total=3"},
		{"BOM, comments, keep-alives, empty data", "\xEF\xBB\xBF: keep-alive\n\ndata:\n\ndata:{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n:ping\n\n", sse,
			"in=1 out=2 cached=0 reasoning=0 total=3"},
		{"unterminated last event discarded", "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n", sse, "none"},
		{"responses usage in response.incomplete",
			"event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":4,\"total_tokens\":7}}}\n\n", sse,
			"in=3 out=4 cached=0 reasoning=0 total=7"},
		{"gemini JSON array stream", `[{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2}},{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":30}}]`,
			WithPath("/v1beta/models/g:streamGenerateContent"), "in=9 out=30 cached=0 reasoning=0 total=39"},
		{"gemini JSON array cut inside the last element keeps the earlier one", `[{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2}},{"usageMetadata":{"promptTokenCount":9,"candidatesTokenC`,
			WithPath("/v1beta/models/g:streamGenerateContent"), "in=9 out=2 cached=0 reasoning=0 total=11"},
		{"truncated JSON body", `{"usage":{"prompt_tokens":1,"completion_tokens":2}`, WithContentType("application/json"), "none"},
		{"ollama NDJSON error line keeps nothing", "{\"error\":\"model not found\"}\n", WithContentType("application/x-ndjson"), "none"},
		{"unsupported encoding", `{"usage":{"prompt_tokens":1,"completion_tokens":2}}`, WithContentEncoding("br"), "none"},
		{"identity encoding", `{"usage":{"prompt_tokens":1,"completion_tokens":2}}`, WithContentEncoding("identity"), "in=1 out=2 cached=0 reasoning=0 total=3"},
		{"event stream labelled application/json", "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n", WithContentType("application/json"),
			"in=1 out=2 cached=0 reasoning=0 total=3"},
		{"keys in strings are not members", `{"text":"\"usage\":{\"prompt_tokens\":5}","usage":{"prompt_tokens":1,"completion_tokens":2}}`, WithFormat(FormatJSON),
			"in=1 out=2 cached=0 reasoning=0 total=3"},
		{"nested usage is not top-level usage", `{"data":{"usage":{"prompt_tokens":5,"completion_tokens":5}}}`, WithFormat(FormatJSON), "none"},
	} {
		if got := meterString(tc.body, tc.opt); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestMeterSawError(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"openai_chat_stream_midstream_error.sse", true},
		{"anthropic_messages_stream_error.sse", true},
		{"openai_error_429.json", true},
		{"anthropic_error_429.json", true},
		{"gemini_error_429.json", true},
		{"openai_chat_stream.sse", false},
		{"openai_responses.json", false},
		{"openai_responses_stream.sse", false},
	} {
		m := NewMeter(fixtureOptions(tc.name)...)
		m.Write(readFixture(t, tc.name))
		m.Usage()
		if got := m.SawError(); got != tc.want {
			t.Errorf("%s: SawError() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMeterBoundedMemory(t *testing.T) {
	const max = 4096
	// An oversized event is skipped, not buffered; the next one still counts.
	big := "data: {\"usage\":{\"prompt_tokens\":99,\"completion_tokens\":99},\"pad\":\"" + strings.Repeat("x", 10*max) + "\"}\n\n"
	small := "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n"
	for _, body := range []string{big + small, small + big} {
		m := NewMeter(WithFormat(FormatSSE), WithMaxEventBytes(max))
		for i := 0; i < len(body); i += 100 {
			m.Write([]byte(body[i:min(i+100, len(body))]))
			if c := cap(m.sse.line) + cap(m.sse.data); c > 2*max+512+lineSlack {
				t.Fatalf("buffers grew to %d bytes, bound %d", c, 2*max)
			}
		}
		if u, ok := m.Usage(); !ok || u.Input != 1 {
			t.Errorf("got %+v, %v; want the small event's usage", u, ok)
		}
	}
	// A huge JSON body (embeddings) is scanned without buffering.
	m := NewMeter(WithFormat(FormatJSON))
	m.Write([]byte(`{"data":[`))
	chunk := []byte(strings.Repeat(`{"embedding":[0.1,0.2,0.3]},`, 1000))
	for range 100 {
		m.Write(chunk)
	}
	m.Write([]byte(`{}],"usage":{"prompt_tokens":17,"total_tokens":17}}`))
	for _, v := range m.json.vals {
		if cap(v) > 64<<10 {
			t.Errorf("captured value buffer of %d bytes", cap(v))
		}
	}
	if u, ok := m.Usage(); !ok || u.Input != 17 {
		t.Errorf("large JSON body: got %+v, %v", u, ok)
	}
}

func TestMeterZeroAllocsPerEventWithoutUsage(t *testing.T) {
	event := []byte("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}],\"usage\":null}\n\n")
	m := NewMeter(WithFormat(FormatSSE))
	m.Write(event) // warm up
	half := len(event) / 2
	allocs := testing.AllocsPerRun(1000, func() {
		m.Write(event)
		m.Write(event[:half]) // split events are copied into reused buffers
		m.Write(event[half:])
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per event without usage, want 0", allocs)
	}
	nd := NewMeter(WithFormat(FormatNDJSON))
	line := []byte("{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"Token\"},\"done\":false}\n")
	nd.Write(line)
	if allocs := testing.AllocsPerRun(1000, func() { nd.Write(line) }); allocs != 0 {
		t.Errorf("%.1f allocations per NDJSON line without usage, want 0", allocs)
	}
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		ct, path string
		want     Format
	}{
		{"text/event-stream; charset=utf-8", "", FormatSSE},
		{"application/x-ndjson", "/api/chat", FormatNDJSON},
		{"application/json", "/v1beta/models/g:streamGenerateContent?alt=sse", FormatJSON},
		{"application/problem+json", "", FormatJSON},
		{"", "/v1beta/models/g:streamGenerateContent?alt=sse", FormatSSE},
		{"", "/v1beta/models/g:streamGenerateContent", FormatJSON},
		{"", "/api/generate", FormatNDJSON},
		{"", "/v1/chat/completions", FormatAuto},
		{"text/plain", "", FormatAuto},
	} {
		if got := DetectFormat(tc.ct, tc.path); got != tc.want {
			t.Errorf("DetectFormat(%q, %q) = %v, want %v", tc.ct, tc.path, got, tc.want)
		}
	}
	m := NewMeter()
	if m.Format() != FormatAuto {
		t.Errorf("Format() before any byte = %v", m.Format())
	}
	m.Write([]byte("\xEF\xBB"))
	m.Write([]byte("\xBF \n "))
	if m.Format() != FormatAuto {
		t.Errorf("Format() after BOM and spaces = %v", m.Format())
	}
	m.Write([]byte("data: x\n\n"))
	if m.Format() != FormatSSE {
		t.Errorf("Format() = %v, want sse", m.Format())
	}
}

func TestMeterWritesAfterUsageAreIgnored(t *testing.T) {
	m := NewMeter(WithFormat(FormatJSON))
	m.Write([]byte(`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`))
	first, _ := m.Usage()
	if n, err := m.Write([]byte(`{"usage":{"prompt_tokens":9,"completion_tokens":9}}`)); n == 0 || err != nil {
		t.Errorf("Write after Usage = %d, %v", n, err)
	}
	second, _ := m.Usage()
	if first != second || m.Close() != nil {
		t.Errorf("usage changed after Usage: %+v then %+v", first, second)
	}
}
