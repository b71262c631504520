package peers

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	redisrate "github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
	sethvargo "github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	throttledredis "github.com/throttled/throttled/v2/store/goredisstore.v9"
	"github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ulemem "github.com/ulule/limiter/v3/drivers/store/memory"
	uleredis "github.com/ulule/limiter/v3/drivers/store/redis"
	"golang.org/x/time/rate"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
	tgredis "github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// Every limiter gets a limit that nothing in the benchmarks reaches, so that
// each call does the full work of an admitted request. Each one is
// configured as its documentation suggests, with default options.
const (
	huge    = 1 << 40
	numKeys = 100_000
)

// take is one limiter's decision for a key: it reports whether the request
// was admitted. A take is used by one goroutine.
type take func(ctx context.Context, key string) (bool, error)

// takes returns a take for one goroutine: tollgate's reuses its Request, as
// a gateway can keep one per connection; the others' APIs take a string and
// share one take.
type takes func() take

func shared(t take) takes { return func() take { return t } }

func tollgateTakes(tb testing.TB, s store.Store, rules int) takes {
	kinds := []algorithms.Kind{algorithms.TokenBucket, algorithms.FixedWindow, algorithms.GCRA, algorithms.SlidingWindow}
	rs := make([]limiter.Rule, rules)
	for i := range rs {
		rs[i] = limiter.Rule{Name: "r" + strconv.Itoa(i), Algorithm: kinds[i], Limit: huge, Period: time.Minute,
			By: []dimensions.Dimension{dimensions.User}}
	}
	l, err := limiter.New(s, rs)
	if err != nil {
		tb.Fatal(err)
	}
	return func() take {
		req := new(limiter.Request)
		return func(ctx context.Context, key string) (bool, error) {
			req.User = key
			d := l.Check(ctx, req)
			return d.Allowed, d.Err
		}
	}
}

// memoryLimiters returns the in-memory limiters, one rule each.
func memoryLimiters(tb testing.TB) []struct {
	name string
	new  func() takes
} {
	return []struct {
		name string
		new  func() takes
	}{
		{"tollgate", func() takes { return tollgateTakes(tb, memory.New(), 1) }},
		{"x-time-rate-64-shards", func() takes {
			s := newShardedRate()
			return shared(func(_ context.Context, key string) (bool, error) { return s.allow(key), nil })
		}},
		{"sethvargo-go-limiter", func() takes {
			s, err := memorystore.New(&memorystore.Config{Tokens: huge, Interval: time.Minute})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { s.Close(context.Background()) })
			return shared(func(ctx context.Context, key string) (bool, error) {
				_, _, _, ok, err := s.Take(ctx, key)
				return ok, err
			})
		}},
		{"ulule-limiter", func() takes {
			l := ulule.New(ulemem.NewStore(), ulule.Rate{Period: time.Minute, Limit: huge})
			return shared(func(ctx context.Context, key string) (bool, error) {
				c, err := l.Get(ctx, key)
				return !c.Reached, err
			})
		}},
		{"throttled", func() takes {
			st, err := memstore.NewCtx(1_000_000)
			if err != nil {
				tb.Fatal(err)
			}
			l, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerMin(1 << 30), MaxBurst: 1 << 30})
			if err != nil {
				tb.Fatal(err)
			}
			return shared(func(ctx context.Context, key string) (bool, error) {
				limited, _, err := l.RateLimitCtx(ctx, key, 1)
				return !limited, err
			})
		}},
	}
}

var _ sethvargo.Store // the contract memorystore implements

// worker numbers RunParallel goroutines, so that each starts at its own key.
var worker atomic.Int64

// runKeys runs t over keys in a cycle: serially, or in RunParallel. An
// error (the limiter could not decide) is counted and reported as
// errors/op; a denial fails the benchmark.
func runKeys(b *testing.B, ts takes, keys []string, parallel bool) {
	ctx := context.Background()
	var errs atomic.Int64
	try := func(t take, key string) bool {
		ok, err := t(ctx, key)
		if err != nil {
			errs.Add(1)
			return true
		}
		if !ok {
			b.Error("denied: the benchmark's limits admit everything")
		}
		return ok
	}
	t := ts()
	for _, k := range keys {
		if !try(t, k) { // every key exists before timing
			return
		}
	}
	errs.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	defer func() { b.ReportMetric(float64(errs.Load())/float64(b.N), "errors/op") }()
	if !parallel {
		i := 0
		for b.Loop() {
			if !try(t, keys[i]) {
				return
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		t := ts()
		i := int(worker.Add(1) * 7919 % int64(len(keys)))
		for pb.Next() {
			if !try(t, keys[i]) {
				return
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
}

// BenchmarkHotKey is one key, one limit, in memory. x/time/rate is one
// rate.Limiter here.
func BenchmarkHotKey(b *testing.B) {
	keys := []string{"hot"}
	for _, parallel := range []bool{false, true} {
		suffix := map[bool]string{false: "", true: "-parallel"}[parallel]
		b.Run("x-time-rate"+suffix, func(b *testing.B) {
			l := rate.NewLimiter(huge, huge)
			runKeys(b, shared(func(context.Context, string) (bool, error) { return l.Allow(), nil }), keys, parallel)
		})
		for _, c := range memoryLimiters(b)[2:] {
			b.Run(c.name+suffix, func(b *testing.B) { runKeys(b, c.new(), keys, parallel) })
		}
		b.Run("tollgate"+suffix, func(b *testing.B) { runKeys(b, memoryLimiters(b)[0].new(), keys, parallel) })
	}
}

// BenchmarkKeys100k is 100,000 keys, one limit each, in memory.
func BenchmarkKeys100k(b *testing.B) {
	keys := make([]string, numKeys)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(1_000_000+i*7919%numKeys)
	}
	for _, parallel := range []bool{false, true} {
		suffix := map[bool]string{false: "", true: "-parallel"}[parallel]
		for _, c := range memoryLimiters(b) {
			b.Run(c.name+suffix, func(b *testing.B) { runKeys(b, c.new(), keys, parallel) })
		}
	}
}

// redisLimiters returns, for a client, each Redis-backed limiter deciding
// n limits for a key: tollgate in one round trip, the others one call per
// limit, as their APIs allow.
func redisLimiters(tb testing.TB, c *goredis.Client, n int) []struct {
	name  string
	takes takes
} {
	ctx := context.Background()
	suffixes := make([]string, n)
	for i := range suffixes {
		suffixes[i] = ":l" + strconv.Itoa(i)
	}
	rr := redisrate.NewLimiter(c)
	rrLimit := redisrate.Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Minute}
	ust, err := uleredis.NewStoreWithOptions(c, ulule.StoreOptions{Prefix: "ulule", MaxRetry: 3})
	if err != nil {
		tb.Fatal(err)
	}
	ul := ulule.New(ust, ulule.Rate{Period: time.Minute, Limit: huge})
	tst, err := throttledredis.NewCtx(c, "throttled:")
	if err != nil {
		tb.Fatal(err)
	}
	tl, err := throttled.NewGCRARateLimiterCtx(tst, throttled.RateQuota{MaxRate: throttled.PerMin(1 << 30), MaxBurst: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	sha, err := c.ScriptLoad(ctx, "return 1").Result()
	if err != nil {
		tb.Fatal(err)
	}
	return []struct {
		name  string
		takes takes
	}{
		{"evalsha-return1", shared(func(ctx context.Context, _ string) (bool, error) {
			return true, c.EvalSha(ctx, sha, nil).Err()
		})},
		{"tollgate", tollgateTakes(tb, tgredis.New(c, tgredis.WithKeyPrefix("tollgate:")), n)},
		{"go-redis-redis_rate", shared(func(ctx context.Context, key string) (bool, error) {
			for _, s := range suffixes {
				r, err := rr.Allow(ctx, key+s, rrLimit)
				if err != nil || r.Allowed == 0 {
					return false, err
				}
			}
			return true, nil
		})},
		{"ulule-limiter", shared(func(ctx context.Context, key string) (bool, error) {
			for _, s := range suffixes {
				r, err := ul.Get(ctx, key+s)
				if err != nil || r.Reached {
					return false, err
				}
			}
			return true, nil
		})},
		{"throttled", shared(func(ctx context.Context, key string) (bool, error) {
			for _, s := range suffixes {
				limited, _, err := tl.RateLimitCtx(ctx, key+s, 1)
				if err != nil || limited {
					return false, err
				}
			}
			return true, nil
		})},
	}
}

// BenchmarkRedis: 1 and 4 limits per decision against a redis-server the
// benchmark starts, at 64 goroutines (32 per core on the 2-core machine),
// each goroutine with its own key.
func BenchmarkRedis(b *testing.B) {
	addr := redistest.StartServer(b)
	const goroutines = 64
	c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: goroutines + 4})
	defer c.Close()
	for _, n := range []int{1, 4} {
		for _, l := range redisLimiters(b, c, n) {
			b.Run("limits="+strconv.Itoa(n)+"/"+l.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				b.SetParallelism(max(1, goroutines/runtimeProcs()))
				b.RunParallel(func(pb *testing.PB) {
					take := l.takes()
					key := "user-" + strconv.FormatInt(worker.Add(1), 10)
					for pb.Next() {
						ok, err := take(ctx, key)
						if err != nil || !ok {
							b.Errorf("admitted %v, error %v", ok, err)
							return
						}
					}
				})
			})
		}
	}
}
