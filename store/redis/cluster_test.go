package redis_test

import (
	"context"
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
