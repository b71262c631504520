package limiter

import (
	"sync/atomic"
	"time"
)

// breaker is a lock-free circuit breaker over the store. Closed, it lets
// every call through and counts consecutive failures; at the threshold it
// opens until a deadline. After the deadline exactly one caller wins a
// probe (and pushes the deadline one interval on); the probe's success
// closes the breaker, its failure keeps it open.
type breaker struct {
	threshold int64
	interval  time.Duration
	since     func() time.Duration // monotonic time since an origin
	failures  atomic.Int64
	openUntil atomic.Int64 // monotonic ns; 0 while closed
}

// allow reports whether a store call may go ahead.
func (b *breaker) allow() bool {
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	now := int64(b.since())
	return now >= until && b.openUntil.CompareAndSwap(until, now+int64(b.interval))
}

// record notes the outcome of a store call and reports whether the
// breaker changed state (opened or closed).
func (b *breaker) record(ok bool) (changed bool) {
	if b.threshold <= 0 {
		return false
	}
	if ok {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return b.openUntil.Load() != 0 && b.openUntil.Swap(0) != 0
	}
	if b.failures.Add(1) >= b.threshold {
		return b.openUntil.CompareAndSwap(0, int64(b.since()+b.interval))
	}
	return false
}

// open reports whether the breaker is open.
func (b *breaker) open() bool { return b.openUntil.Load() != 0 }
