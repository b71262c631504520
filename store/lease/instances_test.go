package lease_test

import (
	"cmp"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/memory"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

const (
	instances  = 4
	goroutines = 16 // per instance
)

// fleet is a run of 4 instances, each a lease.Store on its own backing
// store handle, hammering one hot key from 16 goroutines each.
type fleet struct {
	backs    []store.Store // one per instance (may share state)
	p        algorithms.Params
	size     int64        // lease size N
	attempts int          // per goroutine
	now      func() int64 // the caller clock
	async    func(i int) bool
}

// run returns the units admitted and the span of the clock it used (µs).
func (f fleet) run(t *testing.T) (admitted, span int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := f.now()
	var wg, runs sync.WaitGroup
	var total atomic.Int64
	leases := make([]*lease.Store, len(f.backs))
	for i, b := range f.backs {
		s := lease.New(b, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(f.size)))
		leases[i] = s
		if f.async(i) {
			runs.Go(func() { _ = s.Run(ctx) })
		}
		for range goroutines {
			wg.Go(func() {
				ops := []store.Op{{Key: "hot:k", Params: f.p, Cost: 1}}
				res := make([]algorithms.Result, 1)
				for range f.attempts {
					if err := s.Apply(ctx, f.now(), ops, res); err != nil {
						t.Errorf("instance %d: %v", i, err)
						return
					}
					if res[0].Allowed {
						total.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	span = f.now() - start
	for _, s := range leases {
		if err := s.Release(ctx, f.now()); err != nil {
			t.Errorf("Release: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	runs.Wait()
	return total.Load(), span
}

// check compares admitted with what one exact store admits (allowance, at
// most the attempts) and the documented bound, allowance + instances × N,
// and logs the overshoot.
func check(t *testing.T, name string, admitted, allowance, size int64, f fleet) {
	t.Helper()
	allowance = min(allowance, int64(len(f.backs)*goroutines*f.attempts))
	bound := allowance + instances*size
	t.Logf("%s: admitted %d, exact store admits %d: overshoot %+d (bound +%d = %d instances × lease %d)",
		name, admitted, allowance, admitted-allowance, instances*size, instances, size)
	if admitted > bound {
		t.Errorf("%s: admitted %d > bound %d", name, admitted, bound)
	}
	if admitted < allowance-instances*size {
		t.Errorf("%s: admitted %d < %d: under-admission beyond the leases held", name, admitted, allowance-instances*size)
	}
}

// bucketAllowance is what one token bucket admits over span µs, from full.
func bucketAllowance(p algorithms.Params, span int64) int64 {
	return p.Capacity() + (p.Limit*span+p.Period-1)/p.Period
}

func TestFourInstancesMemory(t *testing.T) {
	const limit, size = 2000, 25
	for _, tc := range []struct {
		name   string
		kind   algorithms.Kind
		async  func(i int) bool
		tick   int64 // µs the shared clock advances per call
		period int64 // µs; 0 is an hour
	}{
		{"fixed_window/sync", algorithms.FixedWindow, func(int) bool { return false }, 0, 0},
		{"fixed_window/run", algorithms.FixedWindow, func(int) bool { return true }, 0, 0},
		{"token_bucket/mixed", algorithms.TokenBucket, func(i int) bool { return i%2 == 0 }, 1, 0},
		{"gcra/mixed", algorithms.GCRA, func(i int) bool { return i%2 == 1 }, 1, 0},
		// Buckets that refill their capacity several times during the run.
		{"token_bucket/refilling", algorithms.TokenBucket, func(i int) bool { return i%2 == 0 }, 1, 6000},
		{"gcra/refilling", algorithms.GCRA, func(i int) bool { return i%2 == 0 }, 1, 6000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := memory.New()
			backs := make([]store.Store, instances)
			for i := range backs {
				backs[i] = shared
			}
			var clock atomic.Int64
			clock.Store(t0)
			f := fleet{
				backs: backs, size: size, attempts: 3 * limit / (instances * goroutines),
				p:     algorithms.Params{Kind: tc.kind, Limit: limit, Period: cmp.Or(tc.period, 3600e6)},
				now:   func() int64 { return clock.Add(tc.tick) },
				async: tc.async,
			}
			admitted, span := f.run(t)
			allowance := int64(limit)
			if tc.kind != algorithms.FixedWindow {
				allowance = bucketAllowance(f.p, span)
			}
			check(t, tc.name, admitted, allowance, size, f)
			if tc.kind == algorithms.FixedWindow && admitted > limit {
				t.Errorf("fixed window: admitted %d > limit %d; the documented bound is exact here", admitted, limit)
			}
		})
	}
}

func TestFourInstancesRedis(t *testing.T) {
	addr := redistest.StartServer(t)
	const limit, size = 2000, 25
	for _, tc := range []struct {
		name   string
		kind   algorithms.Kind
		period int64 // µs
	}{
		{"fixed_window", algorithms.FixedWindow, 3600e6},
		{"token_bucket", algorithms.TokenBucket, 3600e6},
		{"gcra", algorithms.GCRA, 3600e6},
		// Buckets that refill their capacity in a second, about the run's length.
		{"token_bucket/refilling", algorithms.TokenBucket, 1e6},
		{"gcra/refilling", algorithms.GCRA, 1e6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backs := make([]store.Store, instances)
			for i := range backs {
				c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: goroutines + 4})
				t.Cleanup(func() { _ = c.Close() })
				backs[i] = redis.New(c, redis.WithKeyPrefix(tc.name+"/"))
			}
			now := func() int64 { return time.Now().UnixMicro() }
			p := algorithms.Params{Kind: tc.kind, Limit: limit, Period: tc.period}
			// The window starts a second ago, so the run does not straddle two.
			p.Offset = (now() - 1e6) % p.Period
			f := fleet{
				backs: backs, size: size, attempts: 3 * limit / (instances * goroutines),
				p: p, now: now, async: func(i int) bool { return i%2 == 0 },
			}
			admitted, span := f.run(t)
			allowance := int64(limit)
			if tc.kind != algorithms.FixedWindow {
				allowance = bucketAllowance(p, span+10_000) // Redis's clock: a little slack
			}
			check(t, tc.name, admitted, allowance, size, f)
			if tc.kind == algorithms.FixedWindow && admitted > limit {
				t.Errorf("fixed window: admitted %d > limit %d", admitted, limit)
			}
		})
	}
}

// The bucket bound is tight: leases taken before an interval are admitted
// in it, on top of what the bucket admits. A fixed window's are not.
func TestOvershootBoundIsTight(t *testing.T) {
	const size = 10
	for _, kind := range []algorithms.Kind{algorithms.TokenBucket, algorithms.GCRA, algorithms.FixedWindow} {
		t.Run(kind.String(), func(t *testing.T) {
			back := memory.New()
			p := algorithms.Params{Kind: kind, Limit: 100, Period: 3600e6}
			leases := make([]*lease.Store, instances)
			for i := range leases {
				leases[i] = lease.New(back, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(size)))
				one(t, leases[i], t0, "hot:k", p, 1) // 1 admitted, 10 held
			}
			// Another client spends the rest of the limit on the backing store.
			rest := remaining(t, back, t0, "hot:k", p)
			if r := one(t, back, t0, "hot:k", p, rest); !r.Allowed {
				t.Fatalf("spending the rest (%d): denied", rest)
			}
			// An interval from here: an exact store admits nothing more in
			// this window (bucket: before it refills one unit, 36s).
			at := t0 + 1e6
			if kind == algorithms.FixedWindow {
				at = t0 + p.Period // the next window: the leases are void
			}
			admitted := 0
			for _, s := range leases {
				for range 2 * size {
					if one(t, s, at, "hot:k", p, 1).Allowed {
						admitted++
					}
				}
			}
			// An exact store admits nothing in the bucket's interval, and
			// every attempt (80 of the window's 100) in the fresh window.
			exact, want := 0, instances*size
			if kind == algorithms.FixedWindow {
				exact, want = instances*2*size, instances*2*size
			}
			t.Logf("%s: admitted %d in an interval where one exact store admits %d: overshoot %+d",
				kind, admitted, exact, admitted-exact)
			if admitted != want {
				t.Errorf("admitted %d, want %d", admitted, want)
			}
		})
	}
}
