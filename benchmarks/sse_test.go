package benchmarks

// Issue 4's budgets: usage extraction from SSE streams next to io.Copy of
// the same bytes, and no allocation for an event that carries no usage.

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-go/tollgate/tokens"
)

// fixture reads one of the tokens package's LLM response fixtures.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "tokens", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// repeat concatenates one until the result holds at least size bytes.
func repeat(one []byte, size int) []byte {
	return bytes.Repeat(one, (size+len(one)-1)/len(one))
}

// streamCorpus concatenates the complete SSE stream fixtures of every
// provider (not the truncated one, whose open event would swallow the next
// stream's first) until it holds at least size bytes.
func streamCorpus(tb testing.TB, size int) []byte {
	var one []byte
	for _, n := range []string{"openai_chat_stream.sse", "openai_chat_stream_no_usage.sse", "openai_chat_stream_midstream_error.sse",
		"anthropic_messages_stream.sse", "anthropic_messages_stream_error.sse", "gemini_stream.sse",
		"openai_responses_stream.sse", "mcp_tools_call_result_stream.sse"} {
		one = append(one, fixture(tb, n)...)
	}
	return repeat(one, size)
}

// Hide io.WriterTo and io.ReaderFrom, so that both sides copy through the
// same 32 KiB buffer, as a proxy does.
type (
	readerOnly struct{ io.Reader }
	writerOnly struct{ io.Writer }
)

// copyThrough copies corpus to dst in 32 KiB writes.
func copyThrough(b *testing.B, dst io.Writer, corpus, buf []byte) {
	if _, err := io.CopyBuffer(writerOnly{dst}, readerOnly{bytes.NewReader(corpus)}, buf); err != nil {
		b.Fatal(err)
	}
}

func newSSEMeter() *tokens.Meter { return tokens.NewMeter(tokens.WithContentType("text/event-stream")) }

// BenchmarkSSE meters at least 10 MB of SSE streams per op; io.Copy copies
// the same bytes to io.Discard.
func BenchmarkSSE(b *testing.B) {
	corpus := streamCorpus(b, 10<<20)
	buf := make([]byte, 32<<10)
	b.Run("io.Copy", func(b *testing.B) {
		b.SetBytes(int64(len(corpus)))
		b.ReportAllocs()
		for b.Loop() {
			copyThrough(b, io.Discard, corpus, buf)
		}
	})
	b.Run("Meter", func(b *testing.B) {
		b.SetBytes(int64(len(corpus)))
		b.ReportAllocs()
		for b.Loop() {
			m := newSSEMeter()
			copyThrough(b, m, corpus, buf)
			if _, ok := m.Usage(); !ok {
				b.Fatal("no usage")
			}
		}
	})
}

// noUsageEvents returns the events of a stream that carries no usage,
// without its closing [DONE], and their number.
func noUsageEvents(b *testing.B) ([]byte, int) {
	var out []byte
	n := 0
	for ev := range strings.SplitAfterSeq(string(fixture(b, "openai_chat_stream_no_usage.sse")), "\n\n") {
		if strings.TrimSpace(ev) == "" || strings.Contains(ev, "[DONE]") {
			continue
		}
		out = append(out, ev...)
		n++
	}
	if n == 0 {
		b.Fatal("no events in openai_chat_stream_no_usage.sse")
	}
	return out, n
}

// BenchmarkSSENoUsage meters a stream of events without usage. Besides the
// time per op it reports allocs/event: the allocations that one more event
// costs, from the difference between a stream of 1,000 copies of the
// fixture's events and one of 2,000, so that the Meter's own construction
// does not count.
func BenchmarkSSENoUsage(b *testing.B) {
	one, perCopy := noUsageEvents(b)
	short, long := bytes.Repeat(one, 1000), bytes.Repeat(one, 2000)
	buf := make([]byte, 32<<10)
	meter := func(corpus []byte) func() {
		return func() {
			m := newSSEMeter()
			copyThrough(b, m, corpus, buf)
			if _, ok := m.Usage(); ok {
				b.Fatal("usage in a stream without usage")
			}
		}
	}
	b.Run("Meter", func(b *testing.B) {
		extra := testing.AllocsPerRun(3, meter(long)) - testing.AllocsPerRun(3, meter(short))
		b.SetBytes(int64(len(long)))
		b.ReportAllocs()
		run := meter(long)
		for b.Loop() {
			run()
		}
		b.ReportMetric(extra/float64(1000*perCopy), "allocs/event")
	})
}
