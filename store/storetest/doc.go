// Package storetest is the conformance suite every [store.Store] passes.
//
// [Run] creates a fresh store for each subtest and checks, for every
// algorithm kind: sequential exactness against [algorithms.Apply],
// concurrent exactness (exactly the limit admitted from many goroutines),
// all-or-nothing batches across keys (with shadow ops and duplicate keys),
// peek, refund and force-add, expiry and Reset, rejection of invalid
// batches, keys that are borrowed for the call only, Close, and a
// differential test that replays randomized op sequences against the store
// and against a reference model built on [algorithms.Apply] directly and
// requires identical results.
//
// The suite keeps its own clock (microseconds, starting at [DefaultStart])
// and passes it to Apply as now; it never sleeps. A store that expires
// keys by a clock of its own (a Redis server's TTLs) can follow the
// suite's clock with [WithAdvance].
//
// A store implementation runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
//	}
package storetest
