package memory

// Benchmarks of issue 2, section 9, at the Store level. Each runs its
// baseline in the same run, serial and with b.RunParallel:
//
//	BenchmarkHotKey          1 op on one key          vs one rate.Limiter
//	BenchmarkKeys100k        1 op over 100,000 keys   vs rate.Limiters in a 64-shard map
//	BenchmarkBatch4Keys100k  4 ops (4 rules) per call vs 4 rate.Limiters from the map,
//	                         over the same 100,000 keys (4 rules x 25,000 users)
//
// Bytes per key and the cost of expiring idle keys are measured, with the
// other budgets, in package benchmarks.
//
// Time is passed in, not read: now advances by 1 µs per op for the store
// and for rate.Limiter.AllowN alike, so the clock's cost (the Limiter's
// business) is in neither.
//
// Besides ns/op (wall time), each reports cpu-ns/op: the CPU time the
// process used per op, all goroutines included. On a shared machine it
// does not count time other processes took, which makes ratios steadier.

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

const benchKeys = 100_000

// benchParams is a token bucket that admits everything the benchmarks send
// (a burst of 2^40) and refills slowly (1 unit per hour), so every key keeps
// a live state and every op does the full work of an allowed charge.
var benchParams = algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1, Period: 3600_000_000, Burst: 1 << 40}

// newBenchLimiter returns the same bucket for x/time/rate.
func newBenchLimiter() *rate.Limiter { return rate.NewLimiter(rate.Every(time.Hour), 1<<40) }

var benchStart = time.Unix(0, t0*1000)

// distinctKeys returns n keys of a rule, as the limiter spells them, and
// fails the benchmark if any two are equal.
func distinctKeys(b *testing.B, rule string, n int) []string {
	b.Helper()
	keys := make([]string, n)
	seen := make(map[string]struct{}, n)
	for i := range keys {
		keys[i] = rule + ":user=u" + strconv.Itoa(1_000_000+i*7919%n)
		seen[keys[i]] = struct{}{}
	}
	if len(seen) != n {
		b.Fatalf("%d distinct keys of %d", len(seen), n)
	}
	return keys
}

// shardedLimiters is the keyed baseline: rate.Limiters in a map split into
// 64 shards by maphash, each behind a mutex.
type shardedLimiters struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]*rate.Limiter
		_  [40]byte
	}
}

func newShardedLimiters(keys ...[]string) *shardedLimiters {
	s := &shardedLimiters{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*rate.Limiter)
	}
	for _, ks := range keys {
		for _, k := range ks {
			s.get(k)
		}
	}
	return s
}

func (s *shardedLimiters) get(key string) *rate.Limiter {
	sh := &s.shards[maphash.String(s.seed, key)&63]
	sh.mu.Lock()
	l, ok := sh.m[key]
	if !ok {
		l = newBenchLimiter()
		sh.m[key] = l
	}
	sh.mu.Unlock()
	return l
}

// fill applies one op to each key, so the benchmarks measure existing keys.
func fill(b *testing.B, s *Store, keys ...[]string) {
	b.Helper()
	res := make([]algorithms.Result, 1)
	for _, ks := range keys {
		for _, k := range ks {
			if err := s.Apply(context.Background(), t0, []store.Op{{Key: k, Params: benchParams, Cost: 1}}, res); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// cpuMeter measures the process's CPU time per op from start to report.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuMeter { return cpuMeter{b, processCPU()} }

func (m cpuMeter) report() {
	if d := processCPU() - m.start; d > 0 && m.b.N > 0 {
		m.b.ReportMetric(float64(d.Nanoseconds())/float64(m.b.N), "cpu-ns/op")
	}
}

func mustAllow(b *testing.B, ok bool) {
	if !ok {
		b.Fatal("denied: the benchmark's limits are meant to admit everything")
	}
}

func BenchmarkHotKey(b *testing.B) {
	b.Run("tollgate/serial", func(b *testing.B) {
		s := New()
		defer s.Close()
		ops := []store.Op{{Key: "rpm:user=u42", Params: benchParams, Cost: 1}}
		res := make([]algorithms.Result, 1)
		ctx := context.Background()
		b.ReportAllocs()
		now := t0
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			now++
			if err := s.Apply(ctx, now, ops, res); err != nil {
				b.Fatal(err)
			}
		}
		mustAllow(b, res[0].Allowed)
	})
	b.Run("x-time-rate/serial", func(b *testing.B) {
		l := newBenchLimiter()
		b.ReportAllocs()
		now, ok := benchStart, false
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			ok = l.AllowN(now, 1)
		}
		mustAllow(b, ok)
	})
	b.Run("tollgate/parallel", func(b *testing.B) {
		s := New()
		defer s.Close()
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		defer cpu.report()
		b.RunParallel(func(pb *testing.PB) {
			ops := []store.Op{{Key: "rpm:user=u42", Params: benchParams, Cost: 1}}
			res := make([]algorithms.Result, 1)
			ctx := context.Background()
			now := t0
			for pb.Next() {
				now++
				if err := s.Apply(ctx, now, ops, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("x-time-rate/parallel", func(b *testing.B) {
		l := newBenchLimiter()
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		defer cpu.report()
		b.RunParallel(func(pb *testing.PB) {
			now := benchStart
			for pb.Next() {
				now = now.Add(time.Microsecond)
				l.AllowN(now, 1)
			}
		})
	})
}

// worker numbers RunParallel goroutines, so each starts at its own key.
var worker atomic.Int64

func BenchmarkKeys100k(b *testing.B) {
	keys := distinctKeys(b, "rpm", benchKeys)
	b.Run("tollgate/serial", func(b *testing.B) {
		s := New()
		defer s.Close()
		fill(b, s, keys)
		ops := []store.Op{{Params: benchParams, Cost: 1}}
		res := make([]algorithms.Result, 1)
		ctx := context.Background()
		b.ReportAllocs()
		i, now := 0, t0
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			now++
			ops[0].Key = keys[i]
			if i++; i == len(keys) {
				i = 0
			}
			if err := s.Apply(ctx, now, ops, res); err != nil {
				b.Fatal(err)
			}
		}
		mustAllow(b, res[0].Allowed)
	})
	b.Run("x-time-rate/serial", func(b *testing.B) {
		m := newShardedLimiters(keys)
		b.ReportAllocs()
		i, now, ok := 0, benchStart, false
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			ok = m.get(keys[i]).AllowN(now, 1)
			if i++; i == len(keys) {
				i = 0
			}
		}
		mustAllow(b, ok)
	})
	b.Run("tollgate/parallel", func(b *testing.B) {
		s := New()
		defer s.Close()
		fill(b, s, keys)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		defer cpu.report()
		b.RunParallel(func(pb *testing.PB) {
			ops := []store.Op{{Params: benchParams, Cost: 1}}
			res := make([]algorithms.Result, 1)
			ctx := context.Background()
			i, now := int(worker.Add(1)*7919)%len(keys), t0
			for pb.Next() {
				now++
				ops[0].Key = keys[i]
				if i++; i == len(keys) {
					i = 0
				}
				if err := s.Apply(ctx, now, ops, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("x-time-rate/parallel", func(b *testing.B) {
		m := newShardedLimiters(keys)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		defer cpu.report()
		b.RunParallel(func(pb *testing.PB) {
			i, now := int(worker.Add(1)*7919)%len(keys), benchStart
			for pb.Next() {
				now = now.Add(time.Microsecond)
				m.get(keys[i]).AllowN(now, 1)
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	})
}

// BenchmarkBatch4Keys100k is a decision with 4 rules (4 keys of one user)
// over 100,000 keys in all, as in BenchmarkKeys100k: 25,000 users.
func BenchmarkBatch4Keys100k(b *testing.B) {
	rules := []string{"rpm", "tpm", "rpd", "tpd"}
	const users = benchKeys / 4
	keys := make([][]string, len(rules))
	for r, rule := range rules {
		keys[r] = distinctKeys(b, rule, users)
	}
	batch := func(i int, ops []store.Op) {
		for r := range ops {
			ops[r].Key = keys[r][i]
		}
	}
	newOps := func() []store.Op {
		ops := make([]store.Op, len(rules))
		for r := range ops {
			ops[r] = store.Op{Params: benchParams, Cost: 1}
		}
		return ops
	}
	b.Run("tollgate/serial", func(b *testing.B) {
		s := New()
		defer s.Close()
		fill(b, s, keys...)
		ops, res := newOps(), make([]algorithms.Result, len(rules))
		ctx := context.Background()
		b.ReportAllocs()
		i, now := 0, t0
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			now++
			batch(i, ops)
			if i++; i == users {
				i = 0
			}
			if err := s.Apply(ctx, now, ops, res); err != nil {
				b.Fatal(err)
			}
		}
		mustAllow(b, store.Admitted(ops, res))
	})
	b.Run("x-time-rate/serial", func(b *testing.B) {
		m := newShardedLimiters(keys...)
		b.ReportAllocs()
		i, now := 0, benchStart
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			for r := range rules {
				m.get(keys[r][i]).AllowN(now, 1)
			}
			if i++; i == users {
				i = 0
			}
		}
	})
	b.Run("tollgate/parallel", func(b *testing.B) {
		s := New()
		defer s.Close()
		fill(b, s, keys...)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		defer cpu.report()
		b.RunParallel(func(pb *testing.PB) {
			ops, res := newOps(), make([]algorithms.Result, len(rules))
			ctx := context.Background()
			i, now := int(worker.Add(1)*7919)%users, t0
			for pb.Next() {
				now++
				batch(i, ops)
				if i++; i == users {
					i = 0
				}
				if err := s.Apply(ctx, now, ops, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("x-time-rate/parallel", func(b *testing.B) {
		m := newShardedLimiters(keys...)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		defer cpu.report()
		b.RunParallel(func(pb *testing.PB) {
			i, now := int(worker.Add(1)*7919)%users, benchStart
			for pb.Next() {
				now = now.Add(time.Microsecond)
				for r := range rules {
					m.get(keys[r][i]).AllowN(now, 1)
				}
				if i++; i == users {
					i = 0
				}
			}
		})
	})
}
