package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// kinds are the algorithms every subtest runs for.
var kinds = []algorithms.Kind{
	algorithms.FixedWindow,
	algorithms.SlidingWindow,
	algorithms.TokenBucket,
	algorithms.GCRA,
	algorithms.Concurrency,
}

// Run runs the conformance suite. newStore returns a new, empty store; it
// is called once per subtest and may register its own cleanup with t. Run
// closes every store it gets (ignoring [store.ErrClosed]).
//
// The suite's clock is independent of wall time and jumps forward by up to
// a year at a time. A store that reads its own clock (Redis TIME) must be
// configured to use the now passed to Apply, and one whose keys expire on
// their own must keep each key at least ResetAfter of the suite's time;
// see [WithAdvance].
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	cfg := &config{start: DefaultStart, goroutines: 16, perG: 50, diffOps: 3000}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.seeds == nil {
		cfg.seeds = []uint64{1, randomSeed()}
	}
	newHarness := func(t *testing.T) *harness {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		return &harness{t: t, s: s, cfg: cfg, now: cfg.start, model: newModel(), prefix: "storetest:" + t.Name() + ":"}
	}
	for _, k := range kinds {
		t.Run(kindName(k), func(t *testing.T) {
			t.Run("Sequential", func(t *testing.T) { testSequential(newHarness(t), k) })
			t.Run("Concurrent", func(t *testing.T) {
				if cfg.goroutines <= 0 || cfg.perG <= 0 {
					t.Skip("disabled by WithConcurrency")
				}
				testConcurrent(newHarness(t), k)
			})
			t.Run("ConcurrentBatches", func(t *testing.T) {
				if cfg.goroutines <= 0 || cfg.perG <= 0 {
					t.Skip("disabled by WithConcurrency")
				}
				testConcurrentBatches(newHarness(t), k)
			})
			t.Run("AllOrNothing", func(t *testing.T) { testAllOrNothing(newHarness(t), k) })
			t.Run("Peek", func(t *testing.T) { testPeek(newHarness(t), k) })
			t.Run("Refund", func(t *testing.T) { testRefund(newHarness(t), k) })
			t.Run("Force", func(t *testing.T) { testForce(newHarness(t), k) })
			t.Run("ExceedsCapacity", func(t *testing.T) { testExceedsCapacity(newHarness(t), k) })
			t.Run("Expiry", func(t *testing.T) { testExpiry(newHarness(t), k) })
			t.Run("Reset", func(t *testing.T) { testReset(newHarness(t), k) })
			t.Run("InvalidBatch", func(t *testing.T) { testInvalid(newHarness(t), k) })
			t.Run("BorrowedKeys", func(t *testing.T) { testBorrowedKeys(newHarness(t), k) })
		})
	}
	t.Run("EmptyBatch", func(t *testing.T) { testEmptyBatch(newHarness(t)) })
	t.Run("Close", func(t *testing.T) { testClose(newHarness(t)) })
	t.Run("Differential", func(t *testing.T) {
		if cfg.diffOps <= 0 {
			t.Skip("disabled by WithDifferentialOps")
		}
		for _, seed := range cfg.seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				testDifferential(newHarness(t), seed, cfg.diffOps)
			})
		}
	})
}

// kindName returns the Go name of k, for subtest names.
func kindName(k algorithms.Kind) string {
	switch k {
	case algorithms.FixedWindow:
		return "FixedWindow"
	case algorithms.SlidingWindow:
		return "SlidingWindow"
	case algorithms.TokenBucket:
		return "TokenBucket"
	case algorithms.GCRA:
		return "GCRA"
	case algorithms.Concurrency:
		return "Concurrency"
	}
	return k.String()
}

// harness is one subtest's store, clock and reference model. Every batch
// goes to both; results must be identical.
type harness struct {
	t      *testing.T
	s      store.Store
	cfg    *config
	now    int64
	model  *model
	prefix string
}

func (h *harness) key(name string) string { return h.prefix + name }

// advance moves the clock forward by d µs.
func (h *harness) advance(d int64) {
	h.t.Helper()
	if d < 0 {
		h.t.Fatalf("storetest bug: advance(%d)", d)
	}
	from := h.now
	h.now += d
	if h.cfg.advance != nil && d > 0 {
		h.cfg.advance(h.t, h.s, from, h.now)
	}
}

// apply runs ops on the store and on the model, fails the test if the
// store returns an error or any result differs, and returns the results.
func (h *harness) apply(ops ...store.Op) []algorithms.Result {
	h.t.Helper()
	got := make([]algorithms.Result, len(ops))
	if err := h.s.Apply(context.Background(), h.now, ops, got); err != nil {
		h.t.Fatalf("Apply(now=%d, %s): %v", h.now, formatOps(ops), err)
	}
	want := make([]algorithms.Result, len(ops))
	h.model.apply(h.now, ops, want)
	for i := range ops {
		if got[i] != want[i] {
			h.t.Fatalf("Apply(now=%d, %s): op %d: got %+v, want %+v (algorithms.Apply)", h.now, formatOps(ops), i, got[i], want[i])
		}
	}
	return got
}

// one applies a single op with cost and Normal mode.
func (h *harness) one(key string, p algorithms.Params, cost int64) algorithms.Result {
	h.t.Helper()
	return h.apply(store.Op{Key: key, Params: p, Cost: cost})[0]
}

// peek returns the result of a peek (cost 0) on key.
func (h *harness) peek(key string, p algorithms.Params) algorithms.Result {
	h.t.Helper()
	return h.one(key, p, 0)
}

// reset resets keys in the store and in the model.
func (h *harness) reset(keys ...string) {
	h.t.Helper()
	if err := h.s.Reset(context.Background(), keys...); err != nil {
		h.t.Fatalf("Reset(%q): %v", keys, err)
	}
	for _, k := range keys {
		delete(h.model.states, k)
	}
}

func formatOps(ops []store.Op) string {
	b := []byte{'['}
	for i, op := range ops {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "{%q %s L=%d P=%d B=%d O=%d cost=%d", op.Key, op.Params.Kind, op.Params.Limit, op.Params.Period, op.Params.Burst, op.Params.Offset, op.Cost)
		if op.Mode == algorithms.Force {
			b = append(b, " force"...)
		}
		if op.Shadow {
			b = append(b, " shadow"...)
		}
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// borrowString returns a string sharing b's bytes, as a caller building
// keys in a reused buffer would pass.
func borrowString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
