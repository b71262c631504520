package tokens

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// streamCorpus concatenates the complete SSE stream fixtures (not the
// truncated one, whose open event would swallow the next stream's first)
// until it holds at least size bytes. It also returns the number of events.
func streamCorpus(tb testing.TB, size int) ([]byte, int) {
	names := []string{"openai_chat_stream.sse", "openai_chat_stream_no_usage.sse", "openai_chat_stream_midstream_error.sse",
		"anthropic_messages_stream.sse", "anthropic_messages_stream_error.sse", "gemini_stream.sse",
		"openai_responses_stream.sse", "mcp_tools_call_result_stream.sse"}
	var one []byte
	for _, n := range names {
		one = append(one, readFixture(tb, n)...)
	}
	events := strings.Count(strings.ReplaceAll(string(one), "\r\n", "\n"), "\n\n")
	var b bytes.Buffer
	n := 0
	for b.Len() < size {
		b.Write(one)
		n += events
	}
	return b.Bytes(), n
}

// Hide io.WriterTo / io.ReaderFrom so that both runs copy through the same
// 32 KiB buffer, as a proxy does.
type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }

func benchCopy(b *testing.B, corpus []byte, newDst func() io.Writer) {
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(corpus)))
	b.ReportAllocs()
	for b.Loop() {
		dst := newDst()
		if _, err := io.CopyBuffer(writerOnly{dst}, readerOnly{bytes.NewReader(corpus)}, buf); err != nil {
			b.Fatal(err)
		}
		if m, ok := dst.(*Meter); ok {
			if _, ok := m.Usage(); !ok {
				b.Fatal("no usage")
			}
		}
	}
}

// BenchmarkSSEExtraction compares a Meter with a plain io.Copy of the same
// ≥10 MB of SSE streams; the ratio of their ns/op is the metering overhead.
func BenchmarkSSEExtraction(b *testing.B) {
	corpus, events := streamCorpus(b, 10<<20)
	b.Run("io.Copy", func(b *testing.B) {
		benchCopy(b, corpus, func() io.Writer { return io.Discard })
	})
	var sink bytes.Buffer
	sink.Grow(len(corpus))
	b.Run("io.Copy-to-buffer", func(b *testing.B) {
		benchCopy(b, corpus, func() io.Writer { sink.Reset(); return &sink })
	})
	b.Run("Meter", func(b *testing.B) {
		benchCopy(b, corpus, func() io.Writer { return NewMeter(WithContentType("text/event-stream")) })
		b.ReportMetric(float64(events), "events/op")
	})
}

// TestSSEExtractionBudget runs both benchmarks in the same process and
// compares the Meter with io.Copy. Timing on shared CI machines is noisy, so
// it only runs when TOKENS_BENCH_BUDGET is set to the allowed ratio (for
// example TOKENS_BENCH_BUDGET=3).
func TestSSEExtractionBudget(t *testing.T) {
	budget, err := strconv.ParseFloat(os.Getenv("TOKENS_BENCH_BUDGET"), 64)
	if err != nil || raceEnabled {
		t.Skip("set TOKENS_BENCH_BUDGET=<ratio> to run (not under -race)")
	}
	corpus, events := streamCorpus(t, 10<<20)
	cp := testing.Benchmark(func(b *testing.B) { benchCopy(b, corpus, func() io.Writer { return io.Discard }) })
	mt := testing.Benchmark(func(b *testing.B) {
		benchCopy(b, corpus, func() io.Writer { return NewMeter(WithContentType("text/event-stream")) })
	})
	ratio := float64(mt.NsPerOp()) / float64(cp.NsPerOp())
	t.Logf("io.Copy: %v (%.0f MB/s); Meter: %v (%.0f MB/s), %d allocs for %d events; ratio %.2f",
		cp, mbps(cp), mt, mbps(mt), mt.AllocsPerOp(), events, ratio)
	if ratio > budget {
		t.Errorf("Meter takes %.2f× the time of io.Copy, budget %.2f×", ratio, budget)
	}
}

func mbps(r testing.BenchmarkResult) float64 {
	return float64(r.Bytes) * float64(r.N) / 1e6 / r.T.Seconds()
}

// BenchmarkEstimateRequest measures request estimation per fixture.
func BenchmarkEstimateRequest(b *testing.B) {
	for _, name := range estimatedFixtures {
		body := readFixture(b, name)
		b.Run(strings.TrimSuffix(name, ".json"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := estimateFixture(name, body, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeuristic measures the default estimator on prose.
func BenchmarkHeuristic(b *testing.B) {
	text := strings.Repeat("Token buckets refill continuously, so a client that waits one second regains part of its budget. ", 100)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Heuristic{}.CountTokens(text)
	}
}
