package lease_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/memory"
)

// With Run, a lease that falls below half its size is topped up off the
// callers' path: the callers never call the backing store after the first.
func TestRunTopsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		back := &wrapped{Store: memory.New()}
		s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait() // Run is waiting
		p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1000, Period: 3600e6}
		one(t, s, t0, "hot:k", p, 1) // the caller's own call: 1 + 10
		for i := range 100 {
			calls := back.calls.Load()
			if r := one(t, s, t0+1, "hot:k", p, 1); !r.Allowed {
				t.Fatalf("op %d: denied", i)
			}
			if back.calls.Load() != calls {
				t.Fatalf("op %d: the caller called the backing store", i)
			}
			synctest.Wait() // let Run top the lease up
		}
		if got, want := back.calls.Load(), int64(1+100/5); got > want {
			t.Errorf("backing calls %d, want <= %d", got, want)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
		// Run also returns when the store is closed.
		go func() { done <- s.Run(t.Context()) }()
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run after Close: %v, want nil", err)
		}
	})
}

// A caller that finds the lease short while a top-up is in flight waits
// for it instead of calling the backing store; its context bounds the wait.
func TestWaitForTopUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		back := &gated{Store: memory.New(), gate: gate}
		s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
		p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: 60e6}
		ops := []store.Op{{Key: "hot:k", Params: p, Cost: 1}}
		first := make(chan error)
		go func() { first <- s.Apply(t.Context(), t0, ops, make([]algorithms.Result, 1)) }()
		synctest.Wait() // the first caller's top-up is blocked in the backing store
		ctx, cancel := context.WithCancel(t.Context())
		second := make(chan error)
		go func() { second <- s.Apply(ctx, t0, ops, make([]algorithms.Result, 1)) }()
		synctest.Wait()
		if n := back.calls.Load(); n != 1 {
			t.Fatalf("backing calls %d while a top-up is in flight, want 1", n)
		}
		cancel()
		if err := <-second; !errors.Is(err, context.Canceled) {
			t.Errorf("waiter cancelled: %v, want context.Canceled", err)
		}
		go func() { second <- s.Apply(t.Context(), t0, ops, make([]algorithms.Result, 1)) }()
		synctest.Wait()
		close(gate)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-second; err != nil {
			t.Fatal(err)
		}
		if n := back.calls.Load(); n != 1 {
			t.Errorf("backing calls %d, want 1 (the waiter was served from the top-up)", n)
		}
	})
}

// gated blocks every Apply until gate is closed.
type gated struct {
	store.Store
	calls atomic.Int64
	gate  chan struct{}
}

func (g *gated) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	g.calls.Add(1)
	<-g.gate
	return g.Store.Apply(ctx, now, ops, results)
}
