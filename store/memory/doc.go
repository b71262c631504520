// Package memory is the in-process [store.Store]: the embedded default.
//
// A [Store] keeps one fixed-size, pointer-free entry of 48 bytes per key
// (the key's identity, its [algorithms.State] and an expiry deadline) in
// shards chosen by hash/maphash, each behind its own mutex. A key is
// identified by two 64-bit hashes under random seeds, not kept: two keys
// share a counter only if both hashes collide, a chance below 2^-67 for a
// billion keys held at once, with seeds no one outside the process knows.
// A batch locks the shards of its keys in ascending order, so batches
// across shards are atomic and never deadlock. Apply does not allocate,
// for new keys either (the index and entry pages grow in amortized steps),
// for batches of up to 8 ops.
//
// # Expiry and the cap on keys
//
// A key's deadline is now + ResetAfter of its last write: from then on its
// state is the fresh state, and the entry may be removed. Entries are
// removed when a shard's index would otherwise grow, if they have been
// expired for over a second (so a key that comes back within a second of
// its deadline reuses its entry in place, instead of being removed and
// inserted again); on demand ([Store.Sweep]); and, when asked for with
// [WithJanitor], from a goroutine that [Store.Close] stops. Without a
// janitor, the keys of a burst stay until new keys need their room.
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
