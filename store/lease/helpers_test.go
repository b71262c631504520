package lease_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// errPartition is what a partitioned backing store answers.
var errPartition = errors.New("test: partitioned")

// wrapped counts the calls to a backing store and fails them while down.
type wrapped struct {
	store.Store
	calls atomic.Int64
	down  atomic.Bool
}

func (w *wrapped) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	w.calls.Add(1)
	if w.down.Load() {
		return errPartition
	}
	return w.Store.Apply(ctx, now, ops, results)
}

// one applies a single op and fails the test on an error.
func one(t testing.TB, s store.Store, now int64, key string, p algorithms.Params, cost int64) algorithms.Result {
	t.Helper()
	var r [1]algorithms.Result
	if err := s.Apply(context.Background(), now, []store.Op{{Key: key, Params: p, Cost: cost}}, r[:]); err != nil {
		t.Fatalf("Apply(%s, cost %d) at %d: %v", key, cost, now, err)
	}
	return r[0]
}

// remaining returns s's Remaining for key, from a peek (passed through).
func remaining(t testing.TB, s store.Store, now int64, key string, p algorithms.Params) int64 {
	t.Helper()
	return one(t, s, now, key, p, 0).Remaining
}

func fixed(n int64) func(algorithms.Params) int64 {
	return func(algorithms.Params) int64 { return n }
}

func procs() int { return runtime.GOMAXPROCS(0) }
