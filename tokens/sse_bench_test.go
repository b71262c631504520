package tokens

import "testing"

// BenchmarkSSEFramer measures framing alone (events handed to a no-op) over
// the SSE extraction corpus in 32 KiB writes.
func BenchmarkSSEFramer(b *testing.B) {
	corpus, _ := streamCorpus(b, 10<<20)
	b.SetBytes(int64(len(corpus)))
	b.ReportAllocs()
	for b.Loop() {
		f := sseFramer{max: DefaultMaxEventBytes, onEvent: func([]byte) {}}
		for p := corpus; len(p) > 0; {
			n := min(len(p), 32<<10)
			f.write(p[:n])
			p = p[n:]
		}
	}
}

// BenchmarkMayCarryUsage measures the per-event usage scan alone over the
// events of the SSE extraction corpus.
func BenchmarkMayCarryUsage(b *testing.B) {
	corpus, _ := streamCorpus(b, 10<<20)
	var events [][]byte
	f := sseFramer{max: DefaultMaxEventBytes, onEvent: func(d []byte) { events = append(events, d) }}
	f.write(corpus)
	b.SetBytes(int64(len(corpus)))
	n := 0
	for b.Loop() {
		for _, e := range events {
			if mayCarryUsage(e) {
				n++
			}
		}
	}
	b.ReportMetric(float64(n)/float64(b.N), "candidates/op")
}
