package limiter_test

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

// The budgets of issue 2, as ratios to a baseline measured in the same run:
//
//	hot key, 1 rule:        Limiter.Check <= 0.8x rate.Limiter.Allow, 0 allocs
//	100k keys, 1 rule:      <= 0.5x rate limiters in a 64-shard map, 0 allocs
//	100k keys, 4 rules:     <= 2x our own 1-rule time, 0 allocs
//
// Every limit is high enough that nothing is denied, so both sides do the
// same work: admit.

const numKeys = 100_000

func users(b *testing.B) []limiter.Request {
	b.Helper()
	reqs := make([]limiter.Request, numKeys)
	seen := make(map[string]bool, numKeys)
	for i := range reqs {
		u := fmt.Sprintf("user-%07d", i*7919%numKeys)
		reqs[i].User, reqs[i].Tenant = u, fmt.Sprintf("tenant-%d", i%1000)
		seen[u] = true
	}
	if len(seen) != numKeys {
		b.Fatalf("%d distinct keys, want %d", len(seen), numKeys)
	}
	return reqs
}

func newLimiter(b *testing.B, rules ...limiter.Rule) *limiter.Limiter {
	b.Helper()
	l, err := limiter.New(memory.New(), rules)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

var (
	oneRule = []limiter.Rule{{Name: "per-user", Algorithm: algorithms.TokenBucket, Limit: 1 << 50, Period: time.Second, By: []dimensions.Dimension{dimensions.User}}}
	by      = func(d ...dimensions.Dimension) []dimensions.Dimension { return d }
	four    = []limiter.Rule{
		{Name: "user-bucket", Algorithm: algorithms.TokenBucket, Limit: 1 << 50, Period: time.Second, By: by(dimensions.User)},
		{Name: "user-window", Algorithm: algorithms.FixedWindow, Limit: 1 << 50, Period: time.Minute, By: by(dimensions.User)},
		{Name: "tenant-gcra", Algorithm: algorithms.GCRA, Limit: 1 << 50, Period: time.Second, By: by(dimensions.Tenant)},
		{Name: "tenant-user", Algorithm: algorithms.SlidingWindow, Limit: 1 << 50, Period: time.Minute, By: by(dimensions.Tenant, dimensions.User)},
	}
)

func check(b *testing.B, l *limiter.Limiter, req *limiter.Request) {
	if d := l.Check(context.Background(), req); !d.Allowed {
		b.Fatalf("denied: %+v", d.Limiting)
	}
}

func BenchmarkHotKey(b *testing.B) {
	b.Run("tollgate", func(b *testing.B) {
		l := newLimiter(b, oneRule...)
		req := &limiter.Request{Facts: dimensions.Facts{User: "hot"}}
		b.ReportAllocs()
		for b.Loop() {
			check(b, l, req)
		}
	})
	b.Run("x-time-rate", func(b *testing.B) {
		rl := rate.NewLimiter(rate.Limit(1<<50), 1<<50)
		b.ReportAllocs()
		for b.Loop() {
			if !rl.Allow() {
				b.Fatal("denied")
			}
		}
	})
	b.Run("tollgate-parallel", func(b *testing.B) {
		l := newLimiter(b, oneRule...)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := &limiter.Request{Facts: dimensions.Facts{User: "hot"}}
			for pb.Next() {
				check(b, l, req)
			}
		})
	})
	b.Run("x-time-rate-parallel", func(b *testing.B) {
		rl := rate.NewLimiter(rate.Limit(1<<50), 1<<50)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rl.Allow()
			}
		})
	})
}

// shardedRate is the keyed baseline: x/time/rate limiters in a 64-shard map.
type shardedRate struct {
	seed   maphash.Seed
	shards [64]struct {
		sync.Mutex
		m map[string]*rate.Limiter
	}
}

func newShardedRate() *shardedRate {
	s := &shardedRate{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = map[string]*rate.Limiter{}
	}
	return s
}

func (s *shardedRate) allow(key string) bool {
	sh := &s.shards[maphash.String(s.seed, key)&63]
	sh.Lock()
	l := sh.m[key]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(1<<50), 1<<50)
		sh.m[key] = l
	}
	sh.Unlock()
	return l.Allow()
}

func BenchmarkKeys100k(b *testing.B) {
	reqs := users(b)
	for _, parallel := range []bool{false, true} {
		suffix := ""
		if parallel {
			suffix = "-parallel"
		}
		run := func(b *testing.B, f func(i int)) {
			b.ReportAllocs()
			if !parallel {
				i := 0
				for b.Loop() {
					f(i % numKeys)
					i++
				}
				return
			}
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(numKeys / 7))
				for pb.Next() {
					f(i % numKeys)
					i++
				}
			})
		}
		b.Run("tollgate-1rule"+suffix, func(b *testing.B) {
			l := newLimiter(b, oneRule...)
			for i := range reqs {
				check(b, l, &reqs[i])
			}
			b.ResetTimer()
			run(b, func(i int) { check(b, l, &reqs[i]) })
		})
		b.Run("tollgate-4rules"+suffix, func(b *testing.B) {
			l := newLimiter(b, four...)
			for i := range reqs {
				check(b, l, &reqs[i])
			}
			b.ResetTimer()
			run(b, func(i int) { check(b, l, &reqs[i]) })
		})
		b.Run("x-time-rate-64-shards"+suffix, func(b *testing.B) {
			s := newShardedRate()
			for i := range reqs {
				s.allow(reqs[i].User)
			}
			b.ResetTimer()
			run(b, func(i int) {
				if !s.allow(reqs[i].User) {
					b.Fatal("denied")
				}
			})
		})
	}
}
