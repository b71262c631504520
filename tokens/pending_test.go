package tokens

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// referenceSSE frames body with the SSE framer and applies every event to
// a tracker in order, the way a Meter did before events were buffered.
func referenceSSE(body []byte, maxEvent int) (Usage, bool, bool) {
	var t tracker
	f := sseFramer{max: maxEvent, onEvent: func(d []byte) {
		if looksLikeError(d) {
			t.sawError = true
		}
		if mayCarryUsage(d) {
			t.applyJSON(d)
		}
	}}
	f.write(body)
	u, ok := t.usage()
	return u, ok, t.sawError
}

// TestMeterDeferredDecodingMatchesForward checks that decoding buffered
// usage events newest first gives the result of decoding each in order,
// on random sequences of fixture and hostile events, buffers forced to
// flush often, and SawError called mid-stream.
func TestMeterDeferredDecodingMatchesForward(t *testing.T) {
	var events [][]byte
	for _, name := range []string{"openai_chat_stream.sse", "openai_chat_stream_no_usage.sse",
		"openai_chat_stream_midstream_error.sse", "anthropic_messages_stream.sse",
		"anthropic_messages_stream_error.sse", "gemini_stream.sse", "openai_responses_stream.sse",
		"mcp_tools_call_result_stream.sse"} {
		for _, e := range bytes.Split(bytes.ReplaceAll(readFixture(t, name), []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
			if len(bytes.TrimSpace(e)) > 0 {
				events = append(events, append(e, "\n\n"...))
			}
		}
	}
	for _, d := range []string{
		`{"type":"message_delta","usage":{"output_tokens":7}}`,
		`{"type":"message_delta","usage":{"input_tokens":3,"cache_read_input_tokens":2}}`,
		`{"type":"message_delta","usage":{"output_tokens":-1}}`,
		`{"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}`,
		`{"type":"message_start","message":{"usage":{"input_tokens":1.5}}}`,
		`{"usage":{"prompt_tokens":5,"completion_tokens":6}}`,
		`{"usage":{"prompt_tokens":"5","completion_tokens":6}}`,
		`{"usage":{"prompt_tokens":5,"completion_tokens":6}`,
		`{"usage":{"prompt_tokens":1e3}}`,
		`{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4}}`,
		`{"prompt_eval_count":12,"eval_count":13}`,
		`{"error":{"message":"boom"},"usage":{"prompt_tokens":2,"completion_tokens":2}}`,
		`{"usage":{"prompt_tokens":2,"completion_tokens":2},"error":{"message":"late"}}`,
		`{"usage":{"prompt_tokens":2},"error":{"message":"broken"}`,
		`{"type":"response.failed","response":{"usage":{"input_tokens":4,"output_tokens":4}}}`,
		`{"type":"error","usage":null,"error":{"type":"overloaded_error"}}`,
		`{"text":"usage is metered"}`,
		`{"usage":null}`,
	} {
		events = append(events, []byte("data: "+d+"\n\n"))
	}
	rng := rand.New(rand.NewPCG(4, 2))
	for iter := range 3000 {
		var body []byte
		for range 1 + rng.IntN(40) {
			body = append(body, events[rng.IntN(len(events))]...)
		}
		maxEvent := []int{1024, 2048, 4096, 1 << 20}[rng.IntN(4)]
		wu, wok, werr := referenceSSE(body, maxEvent)
		m := NewMeter(WithFormat(FormatSSE), WithMaxEventBytes(maxEvent))
		for p := body; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(700))
			m.Write(p[:n])
			p = p[n:]
			if limit := min(maxPendingEvents, maxEvent); cap(m.pend) > limit {
				t.Fatalf("usage-event buffer grew to %d bytes, bound %d", cap(m.pend), limit)
			}
			if rng.IntN(20) == 0 {
				m.SawError()
			}
		}
		gu, gok := m.Usage()
		if gu != wu || gok != wok || m.SawError() != werr {
			t.Fatalf("iteration %d (max %d): got %+v %v err=%v, want %+v %v err=%v\n%s",
				iter, maxEvent, gu, gok, m.SawError(), wu, wok, werr, fmt.Sprintf("%.3000s", body))
		}
	}
}

func TestIndexMarkMatchesBytesIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("usagegeus\"a")
	for range 20000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if got, want := indexMark(b, markUsage), bytes.Index(b, markUsage); got != want {
			t.Fatalf("indexMark(%q) = %d, want %d", b, got, want)
		}
	}
}

func TestLooksLikeErrorShapes(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"error":{"message":"x"}}`: true, ` { "error" : null}`: false, `{"type":"error"}`: true,
		`{"type": "message"}`: false, `{"object":"error"}`: true, `{"objects":"error"}`: false,
		`{"id":1,"error":{}}`: false, `{`: false, `{"`: false, `{"e`: false, `{"error"`: false,
		`{"error":`: false, "{\n\"error\":\t1}": true, `["error"]`: false,
	} {
		if got := looksLikeError([]byte(doc)); got != want {
			t.Errorf("looksLikeError(%q) = %v, want %v", doc, got, want)
		}
	}
}
