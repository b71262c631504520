package lease_test

import (
	"context"
	"fmt"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/lease"
	"github.com/tollgate-go/tollgate/store/memory"
)

func Example() {
	ctx := context.Background()
	// wrapped counts the backing calls (helpers_test.go); in production the
	// backing store is redis.New(rdb).
	backing := &wrapped{Store: memory.New()}
	s := lease.New(backing,
		lease.WithHotPrefixes("chat-rpm:"),
		lease.WithLeaseSize(func(algorithms.Params) int64 { return 10 }))
	defer s.Close()

	now := int64(1_700_000_000_000_000) // µs
	ops := []store.Op{{Key: "chat-rpm:tenant=acme", Cost: 1,
		Params: algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: 60e6}}}
	results := make([]algorithms.Result, 1)
	admitted := 0
	for range 55 {
		if err := s.Apply(ctx, now, ops, results); err != nil {
			panic(err)
		}
		if results[0].Allowed {
			admitted++
		}
	}
	fmt.Println("admitted:", admitted, "backing calls:", backing.calls.Load())
	if err := s.Release(ctx, now); err != nil { // give unused units back
		panic(err)
	}
	// Output: admitted: 55 backing calls: 5
}
