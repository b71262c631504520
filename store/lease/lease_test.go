package lease_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/memory"
	"github.com/tollgate-go/tollgate/store/storetest"
)

const t0 = int64(1_700_000_000_000_000) // µs, a window start for 1s..1h periods

// With no hot key the decorator is the backing store: it passes the suite.
func TestConformancePassThrough(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return lease.New(memory.New(), lease.WithHotPrefixes("never-used:"))
	})
}

func TestFixedWindowLeases(t *testing.T) {
	back := &wrapped{Store: memory.New()}
	s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: 60e6}
	admitted := 0
	for i := range 150 {
		r := one(t, s, t0+int64(i), "hot:k", p, 1)
		if r.Allowed {
			admitted++
		} else if r.RetryAfter <= 0 {
			t.Fatalf("op %d: denied with RetryAfter %d, want > 0", i, r.RetryAfter)
		}
	}
	if admitted != 100 {
		t.Errorf("admitted %d, want exactly the limit 100", admitted)
	}
	// 9 leases of 1+10, then near the limit 2 calls (raised, then plain)
	// for the 100th, 2 for the first denial; later denials are remembered.
	if got, want := back.calls.Load(), int64(13); got != want {
		t.Errorf("backing calls %d, want %d", got, want)
	}
	if got := remaining(t, back.Store, t0+200, "hot:k", p); got != 0 {
		t.Errorf("backing Remaining %d, want 0", got)
	}
	// The next window: the lease starts afresh.
	if r := one(t, s, t0+60e6, "hot:k", p, 1); !r.Allowed {
		t.Errorf("next window: denied: %+v", r)
	}
}

func TestWindowLeaseVoidAtWindowEnd(t *testing.T) {
	back := memory.New()
	s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 20, Period: 1e6}
	one(t, s, t0, "hot:k", p, 1) // leases 10 more in window 0
	// Window 1: the 10 units of window 0 must not be used.
	for i := range 20 {
		if r := one(t, s, t0+1e6+int64(i), "hot:k", p, 1); !r.Allowed {
			t.Fatalf("window 1, op %d: denied", i)
		}
	}
	if r := one(t, s, t0+1e6+100, "hot:k", p, 1); r.Allowed {
		t.Fatalf("window 1: op 21 admitted: the previous window's lease was used")
	}
}

func TestTokenBucketWithinBound(t *testing.T) {
	back := memory.New()
	const n = 8
	s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(n)))
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1e6, Burst: 20}
	admitted := int64(0)
	const step, steps = 10_000, 1000 // 10 s
	for i := range steps {
		if one(t, s, t0+int64(i)*step, "hot:k", p, 1).Allowed {
			admitted++
		}
	}
	allowance := p.Burst + p.Limit*int64(steps-1)*step/p.Period
	t.Logf("admitted %d, bucket allows %d, bound %d", admitted, allowance, allowance+n)
	if admitted > allowance+n || admitted < allowance-2*n {
		t.Errorf("admitted %d, want within [%d, %d]", admitted, allowance-2*n, allowance+n)
	}
}

func TestBatches(t *testing.T) {
	back := &wrapped{Store: memory.New()}
	s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(5)))
	ctx := context.Background()
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: 60e6}
	small := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 60e6}
	one(t, s, t0, "hot:a", p, 1) // a: lease of 5, 6 charged
	one(t, s, t0, "hot:b", small, 1)
	res := make([]algorithms.Result, 2)
	// b is exhausted: the batch is denied and a's lease keeps its units.
	calls := back.calls.Load()
	ops := []store.Op{{Key: "hot:a", Params: p, Cost: 2}, {Key: "hot:b", Params: small, Cost: 1}}
	if err := s.Apply(ctx, t0+1, ops, res); err != nil {
		t.Fatal(err)
	}
	if store.Admitted(ops, res) || !res[0].Allowed || res[1].Allowed {
		t.Fatalf("batch over an exhausted key: results %+v, want a allowed, b denied, batch denied", res)
	}
	for i := range 5 { // a's 5 leased units are all still there
		if r := one(t, s, t0+2, "hot:a", p, 1); !r.Allowed {
			t.Fatalf("a op %d after the denied batch: denied", i)
		}
	}
	if got := back.calls.Load() - calls; got > 2 {
		t.Errorf("backing calls %d for the denied batch and 5 leased ops, want <= 2", got)
	}
	// A batch mixing a leased and a plain op goes to the backing store.
	ops = []store.Op{{Key: "hot:a", Params: p, Cost: 1}, {Key: "plain", Params: p, Cost: 1}}
	if err := s.Apply(ctx, t0+3, ops, res); err != nil || !store.Admitted(ops, res) {
		t.Fatalf("mixed batch: %v, %+v", err, res)
	}
	if got := remaining(t, back.Store, t0+4, "plain", p); got != 9 {
		t.Errorf("plain Remaining %d, want 9", got)
	}
	// a: 6 (first) + 1 (mixed) charged; the 5 leased units used.
	if got := remaining(t, back.Store, t0+4, "hot:a", p); got != 3 {
		t.Errorf("a backing Remaining %d, want 3", got)
	}
	// Non-leasable ops on a hot key pass through: a peek and a refund.
	if r := one(t, s, t0+5, "hot:a", p, -3); !r.Allowed {
		t.Errorf("refund denied")
	}
	if got := remaining(t, s, t0+6, "hot:a", p); got != 6 {
		t.Errorf("a Remaining after a refund of 3: %d, want 6", got)
	}
}

func TestRelease(t *testing.T) {
	back := memory.New()
	s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
	fw := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: 60e6}
	tb := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 100, Period: 3600e6}
	for range 3 {
		one(t, s, t0, "hot:fw", fw, 1)
		one(t, s, t0, "hot:tb", tb, 1)
	}
	if err := s.Release(context.Background(), t0+1); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		key string
		p   algorithms.Params
	}{{"hot:fw", fw}, {"hot:tb", tb}} {
		if got := remaining(t, back, t0+1, k.key, k.p); got != 97 {
			t.Errorf("%s: backing Remaining %d after Release, want 97 (3 admitted)", k.key, got)
		}
	}
	// Within the margin of the window's end, a window's units are dropped.
	one(t, s, t0+2, "hot:fw", fw, 1)
	if err := s.Release(context.Background(), t0+60e6-1000); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, back, t0+3, "hot:fw", fw); got != 86 {
		t.Errorf("hot:fw: backing Remaining %d, want 86 (lease kept)", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if err := s.Apply(context.Background(), t0, []store.Op{{Key: "hot:fw", Params: fw, Cost: 1}}, make([]algorithms.Result, 1)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
}

func TestPartition(t *testing.T) {
	for _, kind := range []algorithms.Kind{algorithms.FixedWindow, algorithms.TokenBucket, algorithms.GCRA} {
		t.Run(kind.String(), func(t *testing.T) {
			back := &wrapped{Store: memory.New()}
			s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
			p := algorithms.Params{Kind: kind, Limit: 1000, Period: 60e6}
			one(t, s, t0, "hot:k", p, 1) // 1 + a lease of 10
			back.down.Store(true)
			for i := range 10 {
				if r := one(t, s, t0+1, "hot:k", p, 1); !r.Allowed {
					t.Fatalf("partitioned, op %d: denied; want served from the lease", i)
				}
			}
			var r [1]algorithms.Result
			err := s.Apply(context.Background(), t0+2, []store.Op{{Key: "hot:k", Params: p, Cost: 1}}, r[:])
			if !errors.Is(err, errPartition) {
				t.Fatalf("lease exhausted while partitioned: %v, want the backing error", err)
			}
			back.down.Store(false)
			if r := one(t, s, t0+3, "hot:k", p, 1); !r.Allowed {
				t.Fatalf("healed: denied")
			}
			if got := remaining(t, back.Store, t0+4, "hot:k", p); got != 1000-1-10-1-10 {
				t.Errorf("backing Remaining %d, want %d", got, 1000-1-10-1-10)
			}
		})
	}
}

func TestInvalidBatch(t *testing.T) {
	s := lease.New(memory.New(), lease.WithHotPrefixes("hot:"))
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 0, Period: 0}
	err := s.Apply(context.Background(), t0, []store.Op{{Key: "hot:k", Params: p, Cost: 1}}, make([]algorithms.Result, 1))
	if !errors.Is(err, store.ErrInvalidOp) {
		t.Errorf("invalid params: %v, want ErrInvalidOp", err)
	}
}

func TestParamsChange(t *testing.T) {
	back := memory.New()
	s := lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 100, Period: 3600e6}
	one(t, s, t0, "hot:k", p, 1)
	// A reload changes the limit; the operator resets the key (Reset) and
	// the new parameters get a lease of their own.
	if err := s.Reset(context.Background(), "hot:k"); err != nil {
		t.Fatal(err)
	}
	q := p
	q.Limit, q.Burst = 50, 50
	for i := range 50 {
		if r := one(t, s, t0+1, "hot:k", q, 1); !r.Allowed {
			t.Fatalf("new params, op %d: denied", i)
		}
	}
	if r := one(t, s, t0+1, "hot:k", q, 1); r.Allowed {
		t.Fatalf("new params: op 51 admitted")
	}
}

// Serving from a lease allocates nothing.
func TestLocalPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := lease.New(memory.New(), lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(1<<40)))
	p := algorithms.Params{Kind: algorithms.GCRA, Limit: 1 << 50, Period: 1e6}
	ops := []store.Op{{Key: "hot:a", Params: p, Cost: 1}, {Key: "hot:b", Params: p, Cost: 1}}
	res := make([]algorithms.Result, 2)
	ctx := context.Background()
	if err := s.Apply(ctx, t0, ops, res); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := s.Apply(ctx, t0, ops, res); err != nil || !res[0].Allowed {
			t.Fatal(err, res)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per leased batch, want 0", allocs)
	}
}

func BenchmarkLocal(b *testing.B) {
	s := lease.New(memory.New(), lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(1<<40)))
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1 << 50, Period: 1e6}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ops := []store.Op{{Key: "hot:k", Params: p, Cost: 1}}
		res := make([]algorithms.Result, 1)
		for pb.Next() {
			if err := s.Apply(ctx, t0, ops, res); err != nil || !res[0].Allowed {
				b.Fatal(err, res)
			}
		}
	})
}
