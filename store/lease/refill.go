package lease

import (
	"context"
	"fmt"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// Run tops leases up in the background until ctx is done or the Store is
// closed; start it with go s.Run(ctx). While a Run goroutine runs, a lease
// that falls below half its size is topped up from here, so the callers
// of Apply keep being served locally; without one, a caller whose lease
// does not cover its cost tops it up on its own goroutine. Several Run
// goroutines may run. A top-up that fails is dropped: the next Apply that
// finds the lease empty asks the backing store itself and sees the error.
// Run returns ctx.Err(), or nil after Close.
func (s *Store) Run(ctx context.Context) error {
	s.runners.Add(1)
	defer s.runners.Add(-1)
	var ents []*entry
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return nil
		case <-s.wake:
		}
		ents = s.snapshot(ents[:0])
		for _, e := range ents {
			s.topUp(ctx, e)
		}
		clear(ents)
	}
}

// snapshot appends the leases to dst.
func (s *Store) snapshot(dst []*entry) []*entry {
	s.mu.RLock()
	for _, e := range s.leases {
		dst = append(dst, e)
	}
	s.mu.RUnlock()
	return dst
}

// topUp tops the lease e up if it asked for it, with one call to the
// backing store (two when it answers that less is left).
func (s *Store) topUp(ctx context.Context, e *entry) {
	e.mu.Lock()
	want, now := e.wantRefill && !e.refilling, e.refillNow
	e.wantRefill = false // a top-up in flight fills it instead
	e.mu.Unlock()
	if !want {
		return
	}
	extra := e.claim(now, 0)
	if extra == 0 {
		return
	}
	ops := [1]store.Op{{Key: e.key, Params: e.params, Cost: extra}}
	var res [1]algorithms.Result
	err := s.backing.Apply(ctx, now, ops[:], res[:])
	if r := &res[0]; err == nil && !r.Allowed && r.Reason == algorithms.ReasonLimited && r.Remaining > 0 {
		ops[0].Cost = min(extra, r.Remaining)
		err = s.backing.Apply(ctx, now, ops[:], res[:])
	}
	if err != nil {
		e.unclaim()
		return
	}
	if !res[0].Allowed {
		// Nothing left: a caller that runs out asks the backing store
		// itself, which answers its denial (and then remembers it).
		ops[0].Cost = 0
	}
	r := res[0]
	r.RetryAfter = 0 // not a denial of a caller's cost: do not remember it
	e.settle(now, 1, ops[0].Cost, true, &r)
}

// Release returns the unused units of every lease to the backing store in
// one batch of refunds at now (µs) and empties the leases. A fixed window's
// units are returned only while the window has more than the window margin
// left ([WithWindowMargin]); after that they are dropped. Call it before
// Close, for example when an instance shuts down; units not returned come
// back by themselves when the window ends or the bucket refills. If the
// backing store fails, the units are lost and the error is returned.
func (s *Store) Release(ctx context.Context, now int64) error {
	if s.closed.Load() {
		return fmt.Errorf("lease: %w", store.ErrClosed)
	}
	var ops []store.Op
	for _, e := range s.snapshot(nil) {
		e.mu.Lock()
		u := e.units
		if e.window && now+s.cfg.margin >= e.expiry {
			u = 0
		}
		e.units = 0
		e.mu.Unlock()
		if u > 0 {
			ops = append(ops, store.Op{Key: e.key, Params: e.params, Cost: -u})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.backing.Apply(ctx, now, ops, make([]algorithms.Result, len(ops)))
}
