package benchmarks

// Issue 2's budgets: the Limiter on the memory store, next to
// golang.org/x/time/rate (one limiter for the hot key, limiters in a
// 64-shard map for the keyed cases) and a plain map for bytes per key.
// Every limit admits everything the benchmarks send, so both sides do the
// same work: admit and count.

import (
	"context"
	"hash/maphash"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

const numKeys = 100_000

// huge is a limit no benchmark reaches.
const huge = 1 << 50

func by(d ...dimensions.Dimension) []dimensions.Dimension { return d }

// oneRule and fourRules are the decisions of the keyed benchmarks: fourRules
// uses every counting algorithm, keyed by user, tenant or both.
var (
	oneRule = []limiter.Rule{
		{Name: "per-user", Algorithm: algorithms.TokenBucket, Limit: huge, Period: time.Second, By: by(dimensions.User)},
	}
	fourRules = []limiter.Rule{
		{Name: "user-bucket", Algorithm: algorithms.TokenBucket, Limit: huge, Period: time.Second, By: by(dimensions.User)},
		{Name: "user-window", Algorithm: algorithms.FixedWindow, Limit: huge, Period: time.Minute, By: by(dimensions.User)},
		{Name: "tenant-gcra", Algorithm: algorithms.GCRA, Limit: huge, Period: time.Second, By: by(dimensions.Tenant)},
		{Name: "tenant-user", Algorithm: algorithms.SlidingWindow, Limit: huge, Period: time.Minute, By: by(dimensions.Tenant, dimensions.User)},
	}
)

func newLimiter(b *testing.B, rules []limiter.Rule) *limiter.Limiter {
	b.Helper()
	l, err := limiter.New(memory.New(), rules)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func mustCheck(b *testing.B, l *limiter.Limiter, req *limiter.Request) {
	if d := l.Check(context.Background(), req); !d.Allowed {
		b.Fatalf("denied: the benchmark's limits admit everything: %+v", d)
	}
}

// keyedRequests returns numKeys requests with distinct users, spread over
// 1,000 tenants, and fails if any two users are equal.
func keyedRequests(b *testing.B) []limiter.Request {
	b.Helper()
	reqs := make([]limiter.Request, numKeys)
	seen := make(map[string]struct{}, numKeys)
	for i := range reqs {
		u := "user-" + strconv.Itoa(1_000_000+i*7919%numKeys)
		reqs[i].User, reqs[i].Tenant = u, "tenant-"+strconv.Itoa(i%1000)
		seen[u] = struct{}{}
	}
	if len(seen) != numKeys {
		b.Fatalf("%d distinct users, want %d", len(seen), numKeys)
	}
	return reqs
}

// shardedRate is the keyed baseline: rate.Limiters in a map split into 64
// shards by maphash, each behind a mutex.
type shardedRate struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]*rate.Limiter
		_  [40]byte // one shard per cache line
	}
}

func newShardedRate() *shardedRate {
	s := &shardedRate{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*rate.Limiter)
	}
	return s
}

func (s *shardedRate) allow(key string) bool {
	sh := &s.shards[maphash.String(s.seed, key)&63]
	sh.mu.Lock()
	l := sh.m[key]
	if l == nil {
		l = rate.NewLimiter(huge, huge)
		sh.m[key] = l
	}
	sh.mu.Unlock()
	return l.Allow()
}

func BenchmarkHotKey(b *testing.B) {
	b.Run("tollgate", func(b *testing.B) {
		l := newLimiter(b, oneRule)
		req := &limiter.Request{Facts: dimensions.Facts{User: "hot"}}
		b.ReportAllocs()
		for b.Loop() {
			mustCheck(b, l, req)
		}
	})
	b.Run("x-time-rate", func(b *testing.B) {
		rl := rate.NewLimiter(huge, huge)
		b.ReportAllocs()
		for b.Loop() {
			if !rl.Allow() {
				b.Fatal("denied")
			}
		}
	})
	b.Run("tollgate-parallel", func(b *testing.B) {
		l := newLimiter(b, oneRule)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := &limiter.Request{Facts: dimensions.Facts{User: "hot"}}
			for pb.Next() {
				mustCheck(b, l, req)
			}
		})
	})
	b.Run("x-time-rate-parallel", func(b *testing.B) {
		rl := rate.NewLimiter(huge, huge)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rl.Allow()
			}
		})
	})
}

// worker numbers RunParallel goroutines, so that each starts at its own key.
var worker atomic.Int64

// cycle runs f over key indexes in a cycle, serially or in parallel.
func cycle(b *testing.B, parallel bool, f func(i int)) {
	b.ReportAllocs()
	if !parallel {
		i := 0
		for b.Loop() {
			f(i)
			if i++; i == numKeys {
				i = 0
			}
		}
		return
	}
	b.ResetTimer() // the caller's set-up ran before each round
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1) * 7919 % numKeys)
		for pb.Next() {
			f(i)
			if i++; i == numKeys {
				i = 0
			}
		}
	})
}

func BenchmarkKeys100k(b *testing.B) {
	reqs := keyedRequests(b)
	for _, parallel := range []bool{false, true} {
		suffix := ""
		if parallel {
			suffix = "-parallel"
		}
		for _, c := range []struct {
			name  string
			rules []limiter.Rule
		}{{"tollgate-1rule", oneRule}, {"tollgate-4rules", fourRules}} {
			b.Run(c.name+suffix, func(b *testing.B) {
				l := newLimiter(b, c.rules)
				for i := range reqs {
					mustCheck(b, l, &reqs[i]) // every key exists before timing
				}
				cycle(b, parallel, func(i int) { mustCheck(b, l, &reqs[i]) })
			})
		}
		b.Run("x-time-rate-64-shards"+suffix, func(b *testing.B) {
			s := newShardedRate()
			for i := range reqs {
				s.allow(reqs[i].User)
			}
			cycle(b, parallel, func(i int) {
				if !s.allow(reqs[i].User) {
					b.Fatal("denied")
				}
			})
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkBytesPerKey measures the heap each container holds per key, keys
// included, with 1,000,000 keys of 21 bytes. The store copies the key it is
// given (built in a reused buffer, as the limiter does); the map owns a
// string per key. ns/op is the time to insert them all.
func BenchmarkBytesPerKey(b *testing.B) {
	const n = 1_000_000
	key := func(buf []byte, i int) []byte {
		return strconv.AppendInt(append(buf[:0], "rpm:user=u"...), int64(10_000_000_000+i), 10)
	}
	if k := key(nil, 0); len(k) != 21 {
		b.Fatalf("key %q is %d bytes, want 21", k, len(k))
	}
	params := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1, Period: 3600_000_000, Burst: 1 << 40}
	now := time.Now().UnixMicro()
	b.Run("tollgate", func(b *testing.B) {
		var perKey float64
		for b.Loop() {
			before := heapInUse()
			s := memory.New(memory.WithMaxKeys(n))
			ops := []store.Op{{Params: params, Cost: 1}}
			res := make([]algorithms.Result, 1)
			var buf []byte
			for i := range n {
				buf = key(buf, i)
				ops[0].Key = string(buf)
				if err := s.Apply(context.Background(), now, ops, res); err != nil {
					b.Fatal(err)
				}
			}
			ops[0].Key, buf = "", nil
			after := heapInUse()
			if got := s.Len(); got != n {
				b.Fatalf("Len %d, want %d", got, n)
			}
			perKey = (float64(after) - float64(before)) / n
			runtime.KeepAlive(s)
		}
		b.ReportMetric(perKey, "bytes/key")
	})
	b.Run("map-string-int64", func(b *testing.B) {
		var perKey float64
		for b.Loop() {
			before := heapInUse()
			m := make(map[string]int64)
			var buf []byte
			for i := range n {
				buf = key(buf, i)
				m[string(buf)] = int64(i)
			}
			buf = nil
			after := heapInUse()
			if len(m) != n {
				b.Fatalf("len %d, want %d", len(m), n)
			}
			perKey = (float64(after) - float64(before)) / n
			runtime.KeepAlive(m)
		}
		b.ReportMetric(perKey, "bytes/key")
	})
}

// BenchmarkExpire1000 times Store.Sweep removing 1,000 idle keys from a
// store that also holds 9,000 live ones.
func BenchmarkExpire1000(b *testing.B) {
	b.Run("tollgate", func(b *testing.B) {
		idle := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: 1_000_000}
		live := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: 3600_000_000}
		t0 := time.Now().UnixMicro()
		s := memory.New()
		defer s.Close()
		res := make([]algorithms.Result, 1)
		apply := func(k string, p algorithms.Params) {
			if err := s.Apply(context.Background(), t0, []store.Op{{Key: k, Params: p, Cost: 1}}, res); err != nil {
				b.Fatal(err)
			}
		}
		for i := range 9_000 {
			apply("live:user=u"+strconv.Itoa(i), live)
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for i := range 1_000 {
				apply("idle:user=u"+strconv.Itoa(i), idle)
			}
			b.StartTimer()
			if got := s.Sweep(t0 + 2_000_000); got != 1_000 {
				b.Fatalf("Sweep removed %d keys, want 1000", got)
			}
		}
	})
}
