package httplimit_test

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

// flakyStore is a memory store that fails on demand.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func newFlakyStore() *flakyStore { return &flakyStore{Store: memory.New()} }

var errDown = errors.New("test store: down")

func (s *flakyStore) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Apply(ctx, now, ops, results)
}

var _ store.Store = (*flakyStore)(nil)
