// Package lease is a [store.Store] decorator for hot keys: each instance
// keeps a local share (a lease) of a hot key's quota, taken from the
// backing store (typically store/redis) in chunks, and serves decisions
// from it without a round trip. A hot key then costs one backing call per
// lease instead of one per decision.
//
//	s := lease.New(redis.New(rdb), lease.WithHotPrefixes("chat-rpm:"))
//	go s.Run(ctx)                          // optional: top leases up in the background
//	defer s.Close()                        // after s.Release(ctx, now)
//	err := s.Apply(ctx, now, ops, results) // a store.Store like any other
//
// # What is leased
//
// An op is leased when its key is hot ([WithHotKeys], [WithHotPrefixes]),
// its Kind is FixedWindow, TokenBucket or GCRA, its Cost is positive, its
// Mode is Normal, it is not Shadow and its Limit is not 0. Everything else
// (peeks, refunds, forced charges, sliding windows, concurrency) goes to
// the backing store as it is, and so does every batch that holds an op
// that is not leased, or more than 8 ops. At most [WithMaxKeys] keys have
// a lease; further hot keys are passed through.
//
// # Leases
//
// A lease of a key holds at most N units (N = [WithLeaseSize], by default
// 1/64 of the capacity). Units are taken from the backing store by an
// ordinary op (never Force) whose cost is the units wanted, so the backing
// store grants them only when its own limit allows; one top-up per key is
// in flight at a time, and it asks for N minus what the lease holds, so a
// lease holds at most N units (plus, for a moment, the units of a batch
// that took them and then gives them back because another op denied).
//
// A batch whose every op is leased is served locally when the leases cover
// every op's cost: the units are taken under a per-key mutex, with no
// allocation and no call. Otherwise the batch goes to the backing store in
// one call, each op's cost raised by the units that top its lease up back
// to N. If that raised batch is denied, it is sent again with the top-ups
// cut to what the backing store said was left, and then with the ops' own
// costs: a top-up never denies a decision that the backing store alone
// would have admitted (it costs one or two more round trips near
// exhaustion). Either way the batch is all or nothing, as [store.Store]
// requires: a batch served locally takes the units of all its ops or of
// none.
//
// With [Store.Run] running, a lease that falls below N/2 is topped up from
// that goroutine, off the callers' path. Without it, no goroutine is
// started: the caller that finds the lease short tops it up. Callers that
// find a lease short while its top-up is in flight wait for it (up to 16
// top-ups, bounded by their ctx) rather than each calling the backing
// store, so one instance makes about one backing call per N/2 to N units.
// An instance serves at most about N units per backing round trip: choose
// N above its rate on the key times the round trip.
//
// A fixed window's units belong to the window the backing store granted
// them in: they are void from now + ResetAfter of that answer, measured
// on the caller's clock from before the call, so never later than the
// window's end. Bucket units (TokenBucket, GCRA) do not expire: they were
// charged to the bucket when leased, before they are admitted.
//
// A denial from the backing store is remembered until its RetryAfter: an
// op of at least the denied cost is denied locally until then (with the
// remaining RetryAfter), unless the lease covers it.
//
// # Overshoot bound
//
// Every unit admitted was first charged to the backing store. With I
// instances (Stores on one backing store) and lease size N:
//
//   - FixedWindow: the units admitted in a window were all charged in that
//     window, so at most Limit are admitted: no overshoot. The exceptions
//     are a refund by [Store.Release] that reaches the backing store after
//     the window rolled over (prevented by [WithWindowMargin]) and a caller
//     clock that runs slower than the backing store's; each gives at most
//     the units one instance holds, so the bound is Limit + I×N.
//   - TokenBucket and GCRA: over any interval, the units admitted are at
//     most what the bucket admits in that interval plus the units leased
//     before it and admitted in it: at most I×N above the bucket.
//
// The price is under-admission: units an instance holds are not available
// to the others, so a key may be denied while up to I×N units sit unused in
// leases (a fixed window's are lost when it ends; a bucket's come back as
// it refills, or at once by [Store.Release]). A remembered denial may
// also deny units that another instance returned meanwhile. Results served
// locally report Remaining as the lease plus the backing store's last
// answer, and ResetAfter from that answer: estimates, not exact values.
//
// # Partition
//
// While the backing store fails, a hot key is served from its lease (a
// fixed window's until its window ends); a decision the lease does not
// cover returns the backing store's error unchanged, so the limiter's fail
// mode applies. A failed top-up is dropped and asked for again by the next
// decision that needs it. A caller waiting for a top-up waits as long as
// that backing call takes: give the backing store a deadline.
//
// # With the limiter
//
// The Store has no InProcess method, so the limiter bounds its calls with
// its store timeout, which also bounds a wait for a top-up. Its circuit
// breaker opens only after calls fail, that is once the leases are spent.
//
// # Time
//
// now is passed to the backing store as it is; leases use it too, so a
// memory store and a fake clock make tests deterministic. With a backing
// store that reads its own clock (Redis TIME), only durations from its
// answers are used, so a skewed caller clock does not matter; its rate
// does (see the bound).
package lease
