package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
	"github.com/tollgate-go/tollgate/store/storetest"
)

// TestConformanceMiniredis runs the storetest suite on miniredis, whose
// key expiry follows the suite's clock (FastForward), with TTLs exactly
// ResetAfter: it checks that no key expires while its state matters.
func TestConformanceMiniredis(t *testing.T) {
	t.Parallel()
	servers := map[store.Store]*miniredis.Miniredis{}
	storetest.Run(t, func(t *testing.T) store.Store {
		m := miniredis.RunT(t)
		c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
		t.Cleanup(func() { c.Close() })
		s := redis.New(c, redis.WithCallerClock())
		servers[s] = m
		return s
	}, storetest.WithAdvance(func(t *testing.T, s store.Store, from, to int64) {
		servers[s].FastForward(time.Duration(to-from) * time.Microsecond)
	}),
		// gopher-lua is slow under -race; the real server runs the full sizes.
		storetest.WithConcurrency(4, 15), storetest.WithDifferentialOps(600))
}

// TestConformanceServer runs the storetest suite on a real redis-server.
// Its TTLs run on wall time while the suite's clock stands still or jumps,
// so keys get a minimum TTL that outlasts the test.
func TestConformanceServer(t *testing.T) {
	t.Parallel()
	addr := redistest.StartServer(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		// The subtests run one after the other; each starts empty.
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		return redis.New(c, redis.WithCallerClock(), redis.WithMinTTL(time.Hour))
	})
}
