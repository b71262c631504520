package memory_test

import (
	"context"
	"fmt"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

// A batch of two rules for one request: 3 requests per minute per user
// and 1,000 tokens per minute per tenant. The fourth request is denied by
// the first rule, so the tenant's tokens are not charged for it: the batch
// reports the 200 tokens that would have been left.
func Example() {
	s := memory.New()
	defer s.Close()
	perMinute := int64(60_000_000) // µs
	ops := []store.Op{
		{Key: "rpm:user=alice", Params: algorithms.Params{Kind: algorithms.FixedWindow, Limit: 3, Period: perMinute}, Cost: 1},
		{Key: "tpm:tenant=acme", Params: algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1000, Period: perMinute}, Cost: 200},
	}
	results := make([]algorithms.Result, len(ops))
	now := int64(1_767_225_600_000_000) // 2026-01-01T00:00:00Z, µs
	for i := range 4 {
		if err := s.Apply(context.Background(), now, ops, results); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("request %d: admitted=%v requests left=%d tokens left=%d retry after=%dµs\n",
			i+1, store.Admitted(ops, results), results[0].Remaining, results[1].Remaining, results[0].RetryAfter)
	}
	peek := []store.Op{{Key: "tpm:tenant=acme", Params: ops[1].Params}} // cost 0
	if err := s.Apply(context.Background(), now, peek, results); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("tokens left after the denied request:", results[0].Remaining)
	fmt.Println("keys:", s.Len())
	// Output:
	// request 1: admitted=true requests left=2 tokens left=800 retry after=0µs
	// request 2: admitted=true requests left=1 tokens left=600 retry after=0µs
	// request 3: admitted=true requests left=0 tokens left=400 retry after=0µs
	// request 4: admitted=false requests left=0 tokens left=200 retry after=60000000µs
	// tokens left after the denied request: 400
	// keys: 2
}
