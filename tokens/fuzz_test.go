package tokens

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// fuzzMax is the event bound used by the fuzz targets, small so that the
// oversized-event paths are reached.
const fuzzMax = 1024

// chunks cuts b into pseudo-random slices derived from seed.
func chunks(b []byte, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed>>7))
	var out [][]byte
	for len(b) > 0 {
		n := min(1+r.IntN(1+r.IntN(64)), len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func addFixtureSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint64(len(b)))
	}
}

// FuzzSSEFramer checks the SSE framer: no panic, the same events whether the
// bytes come whole or in random slices, no event data above the bound, and
// bounded buffers.
func FuzzSSEFramer(f *testing.F) {
	addFixtureSeeds(f, "openai_chat_stream.sse", "anthropic_messages_stream.sse", "gemini_stream.sse",
		"openai_responses_stream.sse", "malformed_truncated_stream.sse", "mcp_tools_call_result_stream.sse")
	f.Add([]byte("\xEF\xBB\xBFdata:a\r\rdata: b\r\ndata\n\n:c\nid: 1\n\n"), uint64(3))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		collect := func(parts [][]byte) []string {
			var events []string
			fr := sseFramer{max: fuzzMax, onEvent: func(d []byte) {
				if len(d) > fuzzMax {
					t.Fatalf("event of %d bytes above the bound %d", len(d), fuzzMax)
				}
				events = append(events, string(d))
			}}
			for _, p := range parts {
				fr.write(p)
				if cap(fr.line) > 2*(fuzzMax+lineSlack) || cap(fr.data) > 2*(fuzzMax+1) {
					t.Fatalf("buffers grew to %d and %d bytes", cap(fr.line), cap(fr.data))
				}
			}
			return events
		}
		whole := collect([][]byte{body})
		split := collect(chunks(body, seed))
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("whole body gives %q, random slices %q", whole, split)
		}
	})
}

// FuzzJSONScanner checks the incremental JSON member scanner used for JSON
// and NDJSON bodies: no panic, the same documents whole or sliced, captured
// values bounded.
func FuzzJSONScanner(f *testing.F) {
	addFixtureSeeds(f, "ollama_chat_stream.ndjson", "openai_chat.json", "gemini_generate.json", "anthropic_messages.json")
	f.Add([]byte(`[{"usage":{"a":"\"}"}},{"type":"x"}] {"error":null}`), uint64(1))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		collect := func(parts [][]byte) []string {
			var docs []string
			s := newJSONScanner(meterKeys, fuzzMax, func(vals [][]byte, trunc []bool) {
				for i, v := range vals {
					if len(v) > fuzzMax {
						t.Fatalf("captured %d bytes above the bound", len(v))
					}
					docs = append(docs, fmt.Sprintf("%d:%v:%q", i, trunc[i], bytes.TrimSpace(v)))
				}
				docs = append(docs, "|")
			})
			for _, p := range parts {
				s.write(p)
			}
			return docs
		}
		whole := collect([][]byte{body})
		split := collect(chunks(body, seed))
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("whole body gives %q, random slices %q", whole, split)
		}
	})
}

// checkMeter feeds body whole and sliced and checks the invariants every
// decoder must keep: no panic, same result either way, never negative,
// never above the clamp, Total = Input + Output.
func checkMeter(t *testing.T, body []byte, seed uint64, opts ...MeterOption) {
	run := func(parts [][]byte) (Usage, bool) {
		m := NewMeter(append([]MeterOption{WithMaxEventBytes(fuzzMax)}, opts...)...)
		for _, p := range parts {
			if n, err := m.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		return m.Usage()
	}
	u, ok := run([][]byte{body})
	u2, ok2 := run(chunks(body, seed))
	if u != u2 || ok != ok2 {
		t.Fatalf("whole body gives %+v %v, random slices %+v %v", u, ok, u2, ok2)
	}
	for _, v := range []int64{u.Input, u.Output, u.CachedInput, u.Reasoning, u.Total} {
		if v < 0 || v > 3*MaxCount {
			t.Fatalf("usage %+v has a value out of [0, 3*MaxCount]", u)
		}
	}
	if u.Total != u.Input+u.Output || u.CachedInput > u.Input || u.Reasoning > u.Output {
		t.Fatalf("usage %+v is inconsistent", u)
	}
	if !ok && u != (Usage{}) {
		t.Fatalf("no usage but %+v", u)
	}
}

func fuzzDecoder(f *testing.F, fixtures []string, extra []string) {
	addFixtureSeeds(f, fixtures...)
	for _, e := range extra {
		f.Add([]byte(e), uint64(len(e)))
	}
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		for _, format := range []Format{FormatAuto, FormatJSON, FormatSSE, FormatNDJSON} {
			checkMeter(t, body, seed, WithFormat(format))
		}
	})
}

// FuzzUsageOpenAI fuzzes the OpenAI Chat, Completions and Embeddings
// decoders (and OpenAI-compatible servers).
func FuzzUsageOpenAI(f *testing.F) {
	fuzzDecoder(f, []string{"openai_chat.json", "openai_chat_stream.sse", "openai_completions.json", "openai_embeddings.json",
		"openai_chat_stream_midstream_error.sse", "openai_error_429.json", "malformed_truncated_stream.sse"},
		[]string{`{"usage":{"prompt_tokens":-1,"completion_tokens":1e30,"total_tokens":"3"}}`,
			`data: {"usage":{"prompt_tokens":99999999999999999999999,"completion_tokens":null,"total_tokens":1}}` + "\n\n"})
}

// FuzzUsageResponses fuzzes the OpenAI Responses API decoder.
func FuzzUsageResponses(f *testing.F) {
	fuzzDecoder(f, []string{"openai_responses.json", "openai_responses_stream.sse"},
		[]string{`data: {"type":"response.failed","response":{"usage":{"input_tokens":1,"output_tokens":-2}}}` + "\n\n"})
}

// FuzzUsageAnthropic fuzzes the Anthropic Messages decoder, including the
// message_start / message_delta merge.
func FuzzUsageAnthropic(f *testing.F) {
	fuzzDecoder(f, []string{"anthropic_messages.json", "anthropic_messages_stream.sse", "anthropic_messages_stream_error.sse", "anthropic_error_429.json"},
		[]string{`data: {"type":"message_delta","usage":{"output_tokens":1.5,"cache_read_input_tokens":true}}` + "\n\n"})
}

// FuzzUsageGemini fuzzes the Gemini usageMetadata decoder (JSON, SSE, and
// JSON-array streams).
func FuzzUsageGemini(f *testing.F) {
	fuzzDecoder(f, []string{"gemini_generate.json", "gemini_stream.sse", "gemini_error_429.json"},
		[]string{`[{"usageMetadata":{"promptTokenCount":1}},{"usageMetadata":{"thoughtsTokenCount":-4}}]`})
}

// FuzzUsageOllama fuzzes the Ollama native decoder (JSON and NDJSON).
func FuzzUsageOllama(f *testing.F) {
	fuzzDecoder(f, []string{"ollama_chat.json", "ollama_chat_stream.ndjson"},
		[]string{"{\"done\":true,\"prompt_eval_count\":\"26\",\"eval_count\":1}\n{\"error\":\"x\"}\n"})
}

// FuzzUsageBedrock fuzzes the Bedrock Converse decoder.
func FuzzUsageBedrock(f *testing.F) {
	fuzzDecoder(f, []string{"bedrock_converse.json"},
		[]string{`{"usage":{"inputTokens":1,"outputTokens":2,"cacheReadInputTokens":9223372036854775807,"cacheWriteInputTokens":9223372036854775807}}`})
}

// FuzzEstimateRequest checks that request estimation never panics and
// never returns negative counts.
func FuzzEstimateRequest(f *testing.F) {
	addFixtureSeeds(f, "openai_chat_request.json", "anthropic_messages_request.json", "gemini_generate_request.json")
	f.Fuzz(func(t *testing.T, body []byte, _ uint64) {
		r, err := EstimateRequest("/v1beta/models/m:streamGenerateContent", body, nil)
		if err == nil && (r.Input < 0 || r.MaxOutput < 0 || r.ThinkingBudget < 0 || r.MaxOutput > MaxCount) {
			t.Fatalf("EstimateRequest = %+v", r)
		}
		if n := (Heuristic{}).CountTokens(string(body)); n < 0 || n > int64(len(body)) {
			t.Fatalf("CountTokens = %d for %d bytes", n, len(body))
		}
	})
}

// FuzzPayloadTokens checks MCP / A2A sizing never panics nor goes negative.
func FuzzPayloadTokens(f *testing.F) {
	addFixtureSeeds(f, "mcp_tools_call_result.json", "mcp_tools_call_result_stream.sse", "mcp_prompts_get_result.json", "a2a_message_send_request.json")
	f.Fuzz(func(t *testing.T, body []byte, _ uint64) {
		if n, err := PayloadTokens(body, nil); n < 0 || (err != nil && n != 0) {
			t.Fatalf("PayloadTokens = %d, %v", n, err)
		}
	})
}
