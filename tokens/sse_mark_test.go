package tokens

import (
	"fmt"
	"testing"
)

// markEvents frames parts with usage marks on, checks the framer's marks
// against mayCarryUsage, and returns the events with mayCarryUsage's
// answer, and how many marks the framer knew.
func markEvents(t *testing.T, parts [][]byte, max int) (events []string, known int) {
	t.Helper()
	var out []string
	var f sseFramer
	f = sseFramer{max: max, marks: true, onEvent: func(d []byte) {
		want := mayCarryUsage(d)
		switch f.eventMark {
		case markPresent, markAbsent:
			known++
			if got := f.eventMark == markPresent; got != want {
				t.Fatalf("framer mark %v for %q, mayCarryUsage says %v", got, d, want)
			}
		}
		out = append(out, fmt.Sprintf("%v:%q", want, d))
	}}
	for _, p := range parts {
		f.write(p)
	}
	if f.cur != nil {
		t.Fatal("framer kept the caller's slice")
	}
	return out, known
}

// TestSSEUsageMarkSplitEverywhere checks the framer's usage marks against
// mayCarryUsage on events whose marks sit at line edges, inside strings,
// after a null one, and with the body cut in two at every offset.
func TestSSEUsageMarkSplitEverywhere(t *testing.T) {
	body := []byte("\xEF\xBB\xBFdata: {\"usage\":1}\n\n" +
		"data: {\"usage\":null}\n\n" +
		"data: {\"text\":\"the usage is\",\"usage\":null}\n\n" +
		"data: {\"usage\":null,\"x\":{\"usage\":{\"prompt_tokens\":1}}}\n\n" +
		"data: usage\n\n" +
		"data:usage\"\n\n" +
		"data: usag\n\n" +
		"data: usage\"  :  \n\n" +
		"data: usage\" : nul\n\n" +
		"event: usage\ndata: {\"a\":1}\n\n" +
		"data: {\"usageMetadata\":{\"promptTokenCount\":2}}\r\n\r\n" +
		"data: {\"a\":\"g\"}\rdata: {\"usage\":{}}\r\r" +
		"data: {\"usage\":null}\ndata: {\"b\":\"usage\"}\n\n" +
		"data: {\"usage\"\ndata: :null}\n\n" +
		": usage\ndata: {\"gg\":\"ge\",\"usage\": null ,\"u\":\"sage\"}\n\n")
	want, known := markEvents(t, [][]byte{body}, fuzzMax)
	if len(want) != 15 || known != 12 {
		t.Fatalf("%d events, %d marks known: %q", len(want), known, want)
	}
	for i := range len(body) + 1 {
		got, _ := markEvents(t, [][]byte{body[:i], body[i:]}, fuzzMax)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("cut at %d: got %q, want %q", i, got, want)
		}
	}
	m := NewMeter(WithFormat(FormatSSE))
	m.Write([]byte("data: {\"usage\":null}\n\ndata: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: {\"usage\":null}\n\n"))
	if u, ok := m.Usage(); !ok || u.Input != 3 || u.Output != 4 {
		t.Errorf("usage:null around a real usage: got %+v, %v", u, ok)
	}
}

// FuzzSSEUsageMark checks that the usage marks the framer finds agree with
// mayCarryUsage, and that the events are the same whole or sliced.
func FuzzSSEUsageMark(f *testing.F) {
	addFixtureSeeds(f, "openai_chat_stream.sse", "anthropic_messages_stream.sse", "gemini_stream.sse",
		"openai_responses_stream.sse", "malformed_truncated_stream.sse")
	f.Add([]byte("data: {\"usage\":null,\"usage\" :{}}\n\ndata:usage\r\rdata: x usage\"\n\n"), uint64(5))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		whole, _ := markEvents(t, [][]byte{body}, fuzzMax)
		split, _ := markEvents(t, chunks(body, seed), fuzzMax)
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("whole body gives %q, random slices %q", whole, split)
		}
	})
}
