package benchmarks

// Issue 3's budgets: decisions on the Redis store against a real
// redis-server that the benchmark starts, next to go-redis PING and EVALSHA
// of "return 1" at the same concurrency.

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// runGoroutines runs body in exactly g goroutines (1, or a multiple of
// GOMAXPROCS), each with its own id, until b.N iterations are done in all.
func runGoroutines(b *testing.B, g int, body func(next func() bool, id int64)) {
	b.ReportAllocs()
	if g == 1 {
		body(b.Loop, 1)
		return
	}
	procs := runtime.GOMAXPROCS(0)
	if g%procs != 0 {
		b.Fatalf("%d goroutines is not a multiple of GOMAXPROCS=%d", g, procs)
	}
	var ids atomic.Int64
	b.SetParallelism(g / procs)
	b.RunParallel(func(pb *testing.PB) { body(pb.Next, ids.Add(1)) })
}

func BenchmarkRedis(b *testing.B) {
	addr := redistest.StartServer(b)
	ctx := context.Background()
	for _, g := range []int{1, 8, 64} {
		c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: g + 4})
		defer c.Close()
		sha, err := c.ScriptLoad(ctx, "return 1").Result()
		if err != nil {
			b.Fatal(err)
		}
		s := redis.New(c, redis.WithKeyPrefix("bench:"))
		prefix := "goroutines=" + strconv.Itoa(g) + "/"
		b.Run(prefix+"ping", func(b *testing.B) {
			runGoroutines(b, g, func(next func() bool, _ int64) {
				for next() {
					if err := c.Ping(ctx).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(prefix+"evalsha-return1", func(b *testing.B) {
			runGoroutines(b, g, func(next func() bool, _ int64) {
				for next() {
					if err := c.EvalSha(ctx, sha, nil).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		for _, rules := range []int{1, 4} {
			b.Run(prefix+"tollgate-"+strconv.Itoa(rules)+"rule"+plural(rules), func(b *testing.B) {
				runGoroutines(b, g, func(next func() bool, id int64) {
					decideRedis(b, next, s, id, rules)
				})
			})
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// decideRedis applies decisions of n rules (one per counting algorithm) on
// keys of the goroutine's own, all admitted, until next reports false.
func decideRedis(b *testing.B, next func() bool, s *redis.Store, id int64, n int) {
	kinds := []algorithms.Kind{algorithms.TokenBucket, algorithms.FixedWindow, algorithms.GCRA, algorithms.SlidingWindow}
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = store.Op{
			Key:    "g" + strconv.FormatInt(id, 10) + ":r" + strconv.Itoa(i),
			Params: algorithms.Params{Kind: kinds[i], Limit: 1e12, Period: 60e6},
			Cost:   1,
		}
	}
	res := make([]algorithms.Result, n)
	ctx := context.Background()
	for next() {
		if err := s.Apply(ctx, 0, ops, res); err != nil {
			b.Error(err)
			return
		}
		if !store.Admitted(ops, res) {
			b.Errorf("denied: %+v", res)
			return
		}
	}
}

// BenchmarkLocalFirst is issue 9's budget: one hot key at 64 goroutines
// through the Redis store, and through the same store behind store/lease
// with leases of 1,000 units (refilled by its Run loop).
func BenchmarkLocalFirst(b *testing.B) {
	addr := redistest.StartServer(b)
	for _, n := range []int64{0, 1000} {
		name := "redis"
		if n > 0 {
			name = "leases-of-1000-units"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 68})
			defer c.Close()
			var s store.Store = redis.New(c, redis.WithKeyPrefix("bench:"))
			if n > 0 {
				l := lease.New(s, lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(func(algorithms.Params) int64 { return n }))
				done := make(chan struct{})
				go func() { _ = l.Run(ctx); close(done) }()
				defer func() { _ = l.Close(); cancel(); <-done }()
				s = l
			}
			key := "hot:" + b.Name() + ":" + strconv.Itoa(b.N)
			p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1 << 50, Period: 1e6}
			runGoroutines(b, 64, func(next func() bool, _ int64) {
				ops := []store.Op{{Key: key, Params: p, Cost: 1}}
				res := make([]algorithms.Result, 1)
				for next() {
					if err := s.Apply(ctx, 0, ops, res); err != nil || !res[0].Allowed {
						b.Errorf("Apply: %v, %+v", err, res[0])
						return
					}
				}
			})
		})
	}
}
