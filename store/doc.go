// Package store is the contract between the limiter and the places where
// counters live: a [Store] applies a batch of algorithm operations on keys,
// atomically, in one call (one round trip for a remote store).
//
// Implementations live in sub-packages: store/memory (in-process, the
// default) and store/redis. Every implementation passes the conformance
// suite in store/storetest, which replays randomized operations against
// package algorithms directly and against the store and requires identical
// outcomes.
//
// # Batches
//
// A batch is every op of one decision: one per matching rule. It is applied
// all or nothing. Each op is evaluated with [algorithms.Apply] in order, on
// the state left by the ops before it (ops on the same key see each other).
// If every op that is not [Op.Shadow] is allowed, the batch commits: each
// allowed op's charge is written. Otherwise nothing is written. A denial is
// a result, not an error; an error means the store could not decide, and
// then nothing was charged.
//
//	results := make([]algorithms.Result, len(ops))
//	if err := s.Apply(ctx, nowMicros, ops, results); err != nil {
//		// could not decide: apply the fail mode
//	}
package store
