// Package memory is the in-process [store.Store]: the embedded default.
//
// A [Store] keeps one fixed-size entry per key (the key, its
// [algorithms.State] and an expiry deadline) in shards chosen by
// hash/maphash, each behind its own mutex. A batch locks the shards of its
// keys in ascending order, so batches across shards are atomic and never
// deadlock. Looking up an existing key does not allocate; only a new key is
// copied.
//
// # Expiry and the cap on keys
//
// A key's deadline is now + ResetAfter of its last write: from then on its
// state is the fresh state, and the entry may be removed. Entries go away
// incrementally (each insert checks a couple of entries), on demand
// ([Store.Sweep]), and, when asked for with [WithJanitor], from a goroutine
// that [Store.Close] stops.
//
// The store holds at most [WithMaxKeys] keys in all. A new key in a full
// store evicts an entry of its own shard (or, failing that, of any shard
// it can lock without waiting): an expired one, or else the one nearest to
// expiry among a few examined. It never evicts a key that is currently
// denying (its last batch left it exhausted, or denied an op on it as
// limited), so flooding the store with new keys cannot reset an exhausted
// one. When nothing may go (a store full of exhausted keys, the flood an
// attacker can make by exhausting keys on purpose), the batch's new keys
// are decided as fresh and not remembered, while its existing keys are
// charged as usual: a global or per-tenant rule keeps its limit, and only
// the rules of the new keys go unenforced until room frees. [Store.Dropped]
// counts them. Apply never returns [store.ErrFull].
//
// # Time
//
// The store reads no clock: every decision uses the now passed to Apply,
// in microseconds. Once an expired entry is removed, its key is fresh even
// for an earlier now: concurrent callers whose clocks differ by a few
// microseconds see the same as if their requests had come that much later,
// but a clock that goes back by more than a period may re-admit what that
// period already counted.
//
// # Usage
//
//	s := memory.New(memory.WithMaxKeys(100_000))
//	defer s.Close()
//	ops := []store.Op{{Key: "rpm:user=42", Params: algorithms.Params{
//		Kind: algorithms.TokenBucket, Limit: 60, Period: 60e6}, Cost: 1}}
//	results := make([]algorithms.Result, len(ops))
//	err := s.Apply(ctx, time.Now().UnixMicro(), ops, results)
package memory
