package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
	"github.com/tollgate-go/tollgate/store/storetest"
)

// newClusterClient returns a client of a 3-master cluster started for t.
func newClusterClient(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	addrs := redistest.StartCluster(t, 3)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	return c
}

// tagUpToLastColon puts every key of one storetest subtest (they share
// the prefix up to the last ':') in one slot; subtests spread over the
// masters.
func tagUpToLastColon(k string) string {
	if i := strings.LastIndexByte(k, ':'); i > 0 {
		return k[:i]
	}
	return ""
}

func TestCluster(t *testing.T) {
	t.Parallel()
	c := newClusterClient(t)
	ctx := context.Background()

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			return redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithHashTag(tagUpToLastColon),
				redis.WithKeyPrefix(fmt.Sprintf("ct%d:", time.Now().UnixNano())))
		})
	})

	// Keys of one decision on different masters: groups commit on their
	// own, and a group that committed is refunded when another denied.
	t.Run("CrossMaster", func(t *testing.T) {
		s := redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("cross:"))
		now := int64(1_767_225_600_000_000)
		for _, kind := range []algorithms.Kind{algorithms.FixedWindow, algorithms.SlidingWindow, algorithms.TokenBucket, algorithms.GCRA, algorithms.Concurrency} {
			p := algorithms.Params{Kind: kind, Limit: 5, Period: 60e6}
			k := keysOnDistinctMasters(t, ctx, c, "cross:", kind.String(), 3)
			res := make([]algorithms.Result, 3)
			// Exhaust k[2] alone.
			if err := s.Apply(ctx, now, []store.Op{{Key: k[2], Params: p, Cost: 5}}, res); err != nil || !res[0].Allowed {
				t.Fatalf("%s: exhaust: %v %+v", kind, err, res[0])
			}
			ops := []store.Op{{Key: k[0], Params: p, Cost: 2}, {Key: k[1], Params: p, Cost: 3, Shadow: true}, {Key: k[2], Params: p, Cost: 1}}
			if err := s.Apply(ctx, now, ops, res); err != nil {
				t.Fatalf("%s: Apply: %v", kind, err)
			}
			if !res[0].Allowed || !res[1].Allowed || res[2].Allowed || store.Admitted(ops, res) {
				t.Fatalf("%s: got %+v, want k0 and k1 allowed, k2 denied", kind, res)
			}
			// The groups of k0 and k1 committed, then were refunded.
			peek := []store.Op{{Key: k[0], Params: p}, {Key: k[1], Params: p}}
			if err := s.Peek(ctx, now, peek, res); err != nil {
				t.Fatal(err)
			}
			if res[0].Remaining != 5 || res[1].Remaining != 5 {
				t.Fatalf("%s: after the denied cross-master decision: Remaining %d and %d, want 5 and 5 (refunded)", kind, res[0].Remaining, res[1].Remaining)
			}
			// An admitted cross-master decision charges every master.
			ops = []store.Op{{Key: k[0], Params: p, Cost: 2}, {Key: k[1], Params: p, Cost: 3}}
			if err := s.Apply(ctx, now, ops, res); err != nil || !store.Admitted(ops, res) {
				t.Fatalf("%s: admitted decision: %v %+v", kind, err, res)
			}
			if res[0].Remaining != 3 || res[1].Remaining != 2 {
				t.Fatalf("%s: Remaining %d and %d, want 3 and 2", kind, res[0].Remaining, res[1].Remaining)
			}
			if err := s.Reset(ctx, k...); err != nil {
				t.Fatal(err)
			}
			if err := s.Peek(ctx, now, []store.Op{{Key: k[0], Params: p}, {Key: k[1], Params: p}, {Key: k[2], Params: p}}, res); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if res[i].Remaining != 5 {
					t.Fatalf("%s: after Reset, %s has Remaining %d", kind, k[i], res[i].Remaining)
				}
			}
		}
	})

	t.Run("ApplyMany", func(t *testing.T) {
		s := redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("many:"))
		testApplyMany(t, s)
	})
}

// keysOnDistinctMasters returns n key names whose Redis keys (with
// prefix) are served by n different masters.
func keysOnDistinctMasters(t *testing.T, ctx context.Context, c *goredis.ClusterClient, prefix, name string, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	var keys []string
	for i := 0; len(keys) < n && i < 10000; i++ {
		k := fmt.Sprintf("%s-%d", name, i)
		addr := masterOf(t, ctx, c, prefix+k)
		if !seen[addr] {
			seen[addr] = true
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		t.Fatalf("found keys on %d masters, want %d", len(keys), n)
	}
	return keys
}

func masterOf(t *testing.T, ctx context.Context, c *goredis.ClusterClient, key string) string {
	t.Helper()
	cl, err := c.MasterForKey(ctx, key)
	if err != nil {
		t.Fatalf("MasterForKey(%q): %v", key, err)
	}
	return cl.Options().Addr
}

// TestClusterDeadNode kills one master of a 3-master cluster: decisions on
// its keys fail with store.ErrPartial while the other masters answer, and
// after three failures without being sent (ErrNodeDown); decisions on the
// other masters go on; a decision spanning the dead master and a live one
// fails and charges nothing. When every master is dead, the error is no
// longer partial, so the limiter's circuit breaker counts it.
func TestClusterDeadNode(t *testing.T) {
	t.Parallel()
	// The live masters keep serving after the dead one is marked failed
	// (5 s on), however slow the machine.
	servers := redistest.StartClusterServers(t, 3, "--cluster-require-full-coverage", "no")
	var addrs []string
	byAddr := map[string]*redistest.Server{}
	for _, srv := range servers {
		addrs = append(addrs, srv.Addr)
		byAddr[srv.Addr] = srv
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true,
		DialTimeout: 250 * time.Millisecond, DialerRetries: 1, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	const prefix = "dead:"
	s := redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix(prefix))
	k := keysOnDistinctMasters(t, ctx, c, prefix, "k", 3)
	now := int64(1_767_225_600_000_000)
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: 60e6}
	res := make([]algorithms.Result, 2)
	apply := func(keys ...string) error {
		ops := make([]store.Op, len(keys))
		for i, key := range keys {
			ops[i] = store.Op{Key: key, Params: p, Cost: 1}
		}
		return s.Apply(ctx, now, ops, res)
	}
	for _, key := range k {
		if err := apply(key); err != nil {
			t.Fatalf("%s before the kill: %v", key, err)
		}
	}
	dead := byAddr[masterOf(t, ctx, c, prefix+k[0])]
	dead.Kill()

	for i := range 3 {
		err := apply(k[0])
		if !errors.Is(err, store.ErrPartial) || errors.Is(err, redis.ErrNodeDown) || !strings.Contains(err.Error(), dead.Addr) {
			t.Fatalf("call %d on the dead master: %v, want a partial failure naming %s", i, err, dead.Addr)
		}
		if err := apply(k[1]); err != nil {
			t.Fatalf("a live master failed while another was dead: %v", err)
		}
	}
	if err := apply(k[0]); !errors.Is(err, redis.ErrNodeDown) || !errors.Is(err, store.ErrPartial) {
		t.Fatalf("after 3 failures: %v, want ErrNodeDown, partial", err)
	}
	// A decision across the dead master and a live one charges nothing.
	if err := apply(k[1], k[0]); !errors.Is(err, store.ErrPartial) {
		t.Fatalf("decision across a dead and a live master: %v, want a partial failure", err)
	}
	peek := []store.Op{{Key: k[1], Params: p}}
	if err := s.Peek(ctx, now, peek, res); err != nil {
		t.Fatal(err)
	}
	// k[1]: 1 before the kill and 3 in the loop.
	if used := p.Limit - res[0].Remaining; used != 4 {
		t.Fatalf("k[1] used %d after the failed cross-master decision, want 4 (the decision charged nothing)", used)
	}

	// Every master dead: the last one to fail sees no other answer.
	for _, key := range k[1:] {
		byAddr[masterOf(t, ctx, c, prefix+key)].Kill()
	}
	if err := apply(k[1]); err == nil {
		t.Fatal("a dead master answered")
	}
	err := apply(k[2])
	if err == nil || errors.Is(err, store.ErrPartial) {
		t.Fatalf("every master dead: %v, want an error that is not partial", err)
	}
	if err := apply(k[1]); err == nil || errors.Is(err, store.ErrPartial) {
		t.Fatalf("every master dead, again: %v, want an error that is not partial", err)
	}
}
