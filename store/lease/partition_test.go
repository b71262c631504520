package lease_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// A redis-server killed under a lease: the lease is served, then the
// store's error comes back for the limiter's fail mode.
func TestPartitionRedisKilled(t *testing.T) {
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	s := lease.New(redis.New(c), lease.WithHotPrefixes("hot:"), lease.WithLeaseSize(fixed(10)))
	ctx := context.Background()
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1000, Period: 3600e6}
	now := time.Now().UnixMicro()
	one(t, s, now, "hot:k", p, 1) // 1 + a lease of 10
	srv.Kill()
	for i := range 10 {
		if r := one(t, s, now, "hot:k", p, 1); !r.Allowed {
			t.Fatalf("redis down, op %d: denied; want served from the lease", i)
		}
	}
	start := time.Now()
	err := s.Apply(ctx, now, []store.Op{{Key: "hot:k", Params: p, Cost: 1}}, make([]algorithms.Result, 1))
	if err == nil {
		t.Fatal("lease exhausted with redis down: no error")
	}
	t.Logf("after the lease: %v (in %v)", err, time.Since(start))
}
