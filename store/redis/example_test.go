package redis_test

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
)

// A decision with two rules, one round trip. Keys share the tenant's hash
// tag, so the decision stays all or nothing on a Redis Cluster too.
func Example() {
	ctx := context.Background()
	rdb := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{"localhost:6379"}})
	defer rdb.Close()
	s := redis.New(rdb,
		redis.WithKeyPrefix("tollgate:"),
		redis.WithHashTag(func(key string) string { // "tenant/..." keys
			tenant, _, _ := strings.Cut(key, "/")
			return tenant
		}),
	)
	defer s.Close()

	ops := []store.Op{
		{Key: "acme/rpm", Params: algorithms.Params{Kind: algorithms.TokenBucket, Limit: 50, Period: 60e6}, Cost: 1},
		{Key: "acme/tpm", Params: algorithms.Params{Kind: algorithms.SlidingWindow, Limit: 10_000, Period: 60e6}, Cost: 700},
	}
	results := make([]algorithms.Result, len(ops))
	if err := s.Apply(ctx, 0, ops, results); err != nil { // 0: Redis TIME is the clock
		fmt.Println("could not decide:", err)
		return
	}
	if !store.Admitted(ops, results) {
		fmt.Println("limited")
	}
}
