package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
)

const t0 = int64(1_767_225_600_000_000)

func testApplyMany(t *testing.T, s *redis.Store) {
	t.Helper()
	ctx := context.Background()
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 3, Period: 60e6}
	decs := make([]redis.Decision, 50)
	for i := range decs {
		decs[i] = redis.Decision{
			Ops:     []store.Op{{Key: "shared", Params: p, Cost: 1}, {Key: "own" + string(rune('A'+i%26)) + string(rune('a'+i/26)), Params: p, Cost: 1}},
			Results: make([]algorithms.Result, 2),
		}
	}
	decs[7].Ops[0].Key = "" // invalid: its own error only
	if err := s.ApplyMany(ctx, t0, decs); !errors.Is(err, store.ErrInvalidOp) {
		t.Fatalf("ApplyMany: %v, want the invalid decision's error", err)
	}
	admitted := 0
	for i, d := range decs {
		if i == 7 {
			if !errors.Is(d.Err, store.ErrInvalidOp) {
				t.Fatalf("decision 7: Err %v, want ErrInvalidOp", d.Err)
			}
			continue
		}
		if d.Err != nil {
			t.Fatalf("decision %d: %v", i, d.Err)
		}
		if store.Admitted(d.Ops, d.Results) {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("%d decisions admitted on a shared limit of 3, want 3", admitted)
	}
	// Denied decisions charged nothing: every own key that was denied is fresh.
	res := make([]algorithms.Result, 1)
	fresh := 0
	for i, d := range decs {
		if i == 7 {
			continue
		}
		if err := s.Peek(ctx, t0, d.Ops[1:], res); err != nil {
			t.Fatal(err)
		}
		if res[0].Remaining == 3 {
			fresh++
		}
	}
	if fresh != 49-3 {
		t.Fatalf("%d own keys fresh, want %d", fresh, 49-3)
	}
}

func TestAPI(t *testing.T) {
	t.Parallel()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			c := be.client(t)
			t.Run("ApplyMany", func(t *testing.T) {
				testApplyMany(t, redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("many:")))
			})
			t.Run("PeekInspectReset", func(t *testing.T) {
				s := redis.New(c, redis.WithCallerClock(), redis.WithKeyPrefix("pir:"))
				p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1e6}
				res := make([]algorithms.Result, 1)
				if err := s.Apply(ctx, t0, []store.Op{{Key: "a", Params: p, Cost: 4}}, res); err != nil {
					t.Fatal(err)
				}
				st, ttl, err := s.Inspect(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				if want := (algorithms.State{4, t0, 0}); st != want {
					t.Fatalf("Inspect: state %v, want %v", st, want)
				}
				if ttl <= 0 || ttl > 400*time.Millisecond {
					t.Fatalf("Inspect: TTL %v, want (0, 400ms] (ResetAfter 400ms)", ttl)
				}
				for _, now := range []int64{t0, t0 + 150_000} {
					if err := s.Peek(ctx, now, []store.Op{{Key: "a", Params: p, Cost: 7}}, res); err != nil {
						t.Fatal(err)
					}
					_, want := algorithms.Apply(p, st, now, 0, algorithms.Normal)
					if res[0] != want {
						t.Fatalf("Peek at %d: %+v, want %+v", now, res[0], want)
					}
				}
				if err := s.Reset(ctx, "a", "missing"); err != nil {
					t.Fatal(err)
				}
				if st, ttl, err := s.Inspect(ctx, "a"); err != nil || st != (algorithms.State{}) || ttl != 0 {
					t.Fatalf("Inspect after Reset: %v %v %v, want the zero state", st, ttl, err)
				}
			})
			t.Run("NoScript", func(t *testing.T) {
				s := redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("noscript:"))
				p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: 60e6}
				res := make([]algorithms.Result, 1)
				for i := range 3 {
					if err := c.ScriptFlush(ctx).Err(); err != nil {
						t.Fatal(err)
					}
					if err := s.Apply(ctx, t0, []store.Op{{Key: "a", Params: p, Cost: 1}}, res); err != nil || res[0].Remaining != int64(9-i) {
						t.Fatalf("Apply after SCRIPT FLUSH: %v %+v", err, res[0])
					}
				}
				if err := c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				decs := []redis.Decision{
					{Ops: []store.Op{{Key: "b", Params: p, Cost: 1}}, Results: make([]algorithms.Result, 1)},
					{Ops: []store.Op{{Key: "c", Params: p, Cost: 2}}, Results: make([]algorithms.Result, 1)},
				}
				if err := s.ApplyMany(ctx, t0, decs); err != nil || decs[1].Results[0].Remaining != 8 {
					t.Fatalf("ApplyMany after SCRIPT FLUSH: %v %+v", err, decs[1].Results[0])
				}
			})
			t.Run("MalformedState", func(t *testing.T) {
				s := redis.New(c, redis.WithCallerClock(), redis.WithKeyPrefix("bad:"))
				p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1e6}
				res := make([]algorithms.Result, 1)
				for _, v := range []string{"x", "1 2", "1 2 3 4", "1.5 2 3", "99999999999999999999 1 1", "1 2 3 "} {
					if err := c.Set(ctx, "bad:k", v, 0).Err(); err != nil {
						t.Fatal(err)
					}
					if err := s.Apply(ctx, t0, []store.Op{{Key: "k", Params: p, Cost: 1}}, res); err == nil {
						t.Fatalf("Apply on state %q: no error", v)
					}
					if err := s.Peek(ctx, t0, []store.Op{{Key: "k", Params: p}}, res); err == nil {
						t.Fatalf("Peek on state %q: no error", v)
					}
				}
				if err := c.HSet(ctx, "bad:h", "a", "1").Err(); err != nil {
					t.Fatal(err)
				}
				if err := s.Apply(ctx, t0, []store.Op{{Key: "h", Params: p, Cost: 1}}, res); err == nil {
					t.Fatal("Apply on a hash: no error")
				}
			})
			t.Run("RedisTime", func(t *testing.T) {
				s := redis.New(c, redis.WithKeyPrefix("time:"))
				p := algorithms.Params{Kind: algorithms.GCRA, Limit: 10, Period: 1e6}
				res := make([]algorithms.Result, 1)
				// now is ignored: -1 would be invalid with the caller's clock.
				if err := s.Apply(ctx, -1, []store.Op{{Key: "a", Params: p, Cost: 1}}, res); err != nil || !res[0].Allowed {
					t.Fatalf("Apply: %v %+v", err, res[0])
				}
				st, _, err := s.Inspect(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				if d := st[0] - time.Now().UnixMicro(); d < -10e6 || d > 10e6 {
					t.Fatalf("arrival time %d is %dµs away from the wall clock", st[0], d)
				}
				if err := s.Peek(ctx, -1, []store.Op{{Key: "a", Params: p}}, res); err != nil || res[0].Remaining != 9 {
					t.Fatalf("Peek: %v %+v", err, res[0])
				}
			})
			t.Run("Closed", func(t *testing.T) {
				s := redis.New(c)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if err := s.Apply(ctx, 0, nil, nil); !errors.Is(err, store.ErrClosed) {
					t.Fatalf("Apply after Close: %v", err)
				}
				if err := c.Ping(ctx).Err(); err != nil {
					t.Fatalf("the client was closed: %v", err)
				}
			})
		})
	}
}

// TestTTLs runs random batches with Redis TIME on a real server, then scans
// every key: each has a TTL, and no TTL ends before the state resets.
func TestTTLs(t *testing.T) {
	t.Parallel()
	c := newServerClient(t)
	ctx := context.Background()
	s := redis.New(c, redis.WithKeyPrefix("ttl:"))
	r := newRand(7)
	var params []algorithms.Params
	for range 40 {
		p := algorithms.Params{Kind: algorithms.Kind(1 + r.IntN(5)), Limit: 1 + r.Int64N(20), Period: (1 + r.Int64N(600)) * 1e6, Burst: r.Int64N(30)}
		params = append(params, p)
	}
	res := make([]algorithms.Result, 4)
	for range 2000 {
		n := 1 + r.IntN(4)
		ops := make([]store.Op, n)
		for j := range ops {
			i := r.IntN(len(params))
			ops[j] = store.Op{Key: keyName(i), Params: params[i], Cost: r.Int64N(8) - 2}
			if r.IntN(8) == 0 {
				ops[j].Mode = algorithms.Force
			}
		}
		if err := s.Apply(ctx, 0, ops, res); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	iter := c.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys after the run")
	}
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 0 {
			t.Fatalf("key %q has no TTL (%v)", k, ttl)
		}
	}
	for i, p := range params {
		k := keyName(i)
		st, ttl, err := s.Inspect(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if st == (algorithms.State{}) {
			continue
		}
		peek := make([]algorithms.Result, 1)
		if err := s.Peek(ctx, 0, []store.Op{{Key: k, Params: p}}, peek); err != nil {
			t.Fatal(err)
		}
		// The TTL was read first: it may be a few ms shorter by now.
		if slack := 50 * time.Millisecond; ttl+slack < time.Duration(peek[0].ResetAfter)*time.Microsecond {
			t.Fatalf("%s (%+v): TTL %v ends before the state resets in %dµs", k, p, ttl, peek[0].ResetAfter)
		}
	}
}
