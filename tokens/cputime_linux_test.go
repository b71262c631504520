//go:build linux

package tokens

import (
	"io"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU returns the CPU time the calling thread has used (user and
// system). Callers lock the goroutine to its thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSSEExtractionCPU is BenchmarkSSEExtraction reporting the thread
// CPU time per op (cpu-ns/op), steadier than ns/op on a loaded machine. The
// rusage clock ticks coarsely, so run it with a -benchtime of a few hundred
// iterations at least.
func BenchmarkSSEExtractionCPU(b *testing.B) {
	corpus, events := streamCorpus(b, 10<<20)
	run := func(b *testing.B, newDst func() io.Writer) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c0 := threadCPU()
		benchCopy(b, corpus, newDst)
		b.ReportMetric(float64(threadCPU()-c0)/float64(b.N), "cpu-ns/op")
	}
	b.Run("io.Copy", func(b *testing.B) {
		run(b, func() io.Writer { return io.Discard })
	})
	b.Run("Meter", func(b *testing.B) {
		run(b, func() io.Writer { return NewMeter(WithContentType("text/event-stream")) })
		b.ReportMetric(float64(events), "events/op")
	})
}
