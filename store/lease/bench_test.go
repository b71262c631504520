package lease_test

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// benchGoroutines is the number of goroutines on the hot key.
const benchGoroutines = 64

// hotKey returns a benchmark of one hot key (a token bucket that never
// denies) through a redis.Store on addr, leased with lease size n when
// n > 0. Each run has its own client and key.
func hotKey(addr string, n int64) func(b *testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: benchGoroutines + 4})
		defer c.Close()
		back := &wrapped{Store: redis.New(c)}
		var s store.Store = back
		if n > 0 {
			l := lease.New(s, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(n)))
			done := make(chan struct{})
			go func() { _ = l.Run(ctx); close(done) }()
			defer func() { _ = l.Close(); <-done }()
			s = l
		}
		key := fmt.Sprintf("hot:%s:%d:%d", b.Name(), n, b.N)
		p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1 << 50, Period: 1e6}
		b.ReportAllocs()
		b.SetParallelism(max(1, benchGoroutines/procs()))
		b.RunParallel(func(pb *testing.PB) {
			ops := []store.Op{{Key: key, Params: p, Cost: 1}}
			res := make([]algorithms.Result, 1)
			for pb.Next() {
				if err := s.Apply(ctx, 0, ops, res); err != nil || !res[0].Allowed {
					b.Errorf("Apply: %v, %+v", err, res[0])
					return
				}
			}
		})
		b.ReportMetric(float64(back.calls.Load())/float64(b.N), "redis-calls/op")
	}
}

// BenchmarkHotKey compares one hot key through the pure Redis store with
// the same store behind leases of 100 and 1000 units, against one
// redis-server, at 64 goroutines.
func BenchmarkHotKey(b *testing.B) {
	addr := redistest.StartServer(b)
	b.Run("redis", hotKey(addr, 0))
	b.Run("lease=100", hotKey(addr, 100))
	b.Run("lease=1000", hotKey(addr, 1000))
}
