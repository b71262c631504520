package policy_test

import (
	"context"
	"fmt"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/store/memory"
)

func ExampleLoad() {
	p, err := policy.Load([]byte(`
version: 1
models:
  - {model: gpt-4, rate_limit: {rpm: 2}}
rules:
  - name: per-user
    limit: 100/h
    by: [user]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	lim, err := limiter.New(memory.New(), p.Rules(), limiter.WithStoreTimeout(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := &limiter.Request{Facts: dimensions.Facts{User: "alice", Model: "gpt-4"}}
	for range 3 {
		d := lim.Check(context.Background(), req)
		fmt.Println(d.Allowed, d.Limiting.Rule.Name)
	}
	// Output:
	// true model:gpt-4:rpm
	// true model:gpt-4:rpm
	// false model:gpt-4:rpm
}

func ExampleErrors() {
	_, err := policy.Load([]byte(`
version: 1
rules:
  - {name: a, limit: 60/hour, algorithm: token_buket}
  - {name: b, parent: c, share: 0.5}
`))
	for _, e := range policy.Errors(err) {
		fmt.Println(e)
	}
	// Output:
	// policy: /rules/0/algorithm: "token_buket" is not an algorithm (want fixed_window, sliding_window, token_bucket, gcra or concurrency); did you mean "token_bucket"?
	// policy: /rules/0/limit: "60/hour" is not a rate; did you mean "60/h"?
	// policy: /rules/1/parent: no rule is named "c"
}

func ExampleParseRate() {
	r, _ := policy.ParseRate("100/5m")
	fmt.Println(r.Limit, r.Period, r)
	_, err := policy.ParseRate("100/60s")
	fmt.Println(err)
	// Output:
	// 100 5m0s 100/5m
	// policy: "100/60s" is not in canonical form (each rate has one spelling); did you mean "100/m"?
}
