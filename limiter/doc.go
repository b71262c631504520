// Package limiter is tollgate's engine: it matches a request against rules,
// checks every matching rule in one store call, all or nothing, and returns
// a Decision. A denial is a value with RetryAfter, remaining and reset; an
// error from the store is handled by each rule's fail mode.
//
// # One request
//
// Every rule that matches the request (its When matcher, and a value for
// each of its By dimensions) yields one op on one counter key. Requests
// rules cost 1; Tokens, InputTokens and Cost rules reserve the request's
// Estimate; delayed rules (OutputTokens by default) only peek at check time
// and are charged at settle time. If any enforcing rule denies, nothing is
// charged. Shadow rules are evaluated and reported, never deny.
//
// A Decision with a Reservation must be settled: Settle(actual) corrects
// token and cost rules to the measured usage, charges delayed rules past
// their limit if need be (the response that crosses the quota completes,
// the next request is refused), and releases concurrency slots. Cancel
// gives the reservation back.
//
// # Failures
//
// A store call has a deadline (WithStoreTimeout) and goes through a circuit
// breaker (WithCircuitBreaker). When the store cannot decide, each rule
// follows its fail mode: allow, deny, or local (enforce in a fallback store
// with the limit divided among instances).
//
// # Usage
//
//	l, err := limiter.New(memory.New(), []limiter.Rule{{
//		Name: "per-user", Algorithm: algorithms.TokenBucket,
//		Limit: 100, Period: time.Minute, By: []dimensions.Dimension{dimensions.User},
//	}})
//	d := l.Check(ctx, &limiter.Request{Facts: dimensions.Facts{User: "alice"}})
//	if !d.Allowed {
//		// answer 429, Retry-After: d.RetryAfter
//	}
//
// A Limiter is safe for concurrent use; SetRules replaces the rules
// atomically while it runs.
package limiter
