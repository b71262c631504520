package algorithms_test

import (
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
)

// benchParams: 100 per second, so a benchmark step of 7ms mixes admits
// and denials.
func benchParams(kind algorithms.Kind) algorithms.Params {
	return algorithms.Params{Kind: kind, Limit: 100, Period: 1_000_000, Burst: 20}
}

// applyLoop runs n Apply calls on one key, the clock advancing 7ms per
// call; concurrency releases every other call.
func applyLoop(p algorithms.Params, n int) (algorithms.State, int64) {
	var s algorithms.State
	var res algorithms.Result
	now := int64(1_700_000_000_000_000)
	var admitted int64
	for i := range n {
		cost := int64(1 + i%3)
		if p.Kind == algorithms.Concurrency && i%2 == 1 {
			cost = -cost
		}
		s, res = algorithms.Apply(p, s, now, cost, algorithms.Normal)
		if res.Allowed {
			admitted++
		}
		now += 7_000
	}
	return s, admitted
}

func TestApplyDoesNotAllocate(t *testing.T) {
	for _, kind := range allKinds {
		p := benchParams(kind)
		if n := testing.AllocsPerRun(100, func() { applyLoop(p, 50) }); n != 0 {
			t.Errorf("%v: %v allocations per 50 Apply calls, want 0", kind, n)
		}
	}
}

var sinkState algorithms.State

func BenchmarkApply(b *testing.B) {
	for _, kind := range allKinds {
		p := benchParams(kind)
		b.Run(kind.String(), func(b *testing.B) {
			b.ReportAllocs()
			var s algorithms.State
			now := int64(1_700_000_000_000_000)
			cost := int64(1)
			for b.Loop() {
				s, _ = algorithms.Apply(p, s, now, cost, algorithms.Normal)
				if p.Kind == algorithms.Concurrency {
					cost = -cost // acquire, release, acquire, ...
				}
				now += 7_000
			}
			sinkState = s
		})
	}
}
