// Package redis is a [store.Store] on Redis, for a fleet of gateway
// instances that share one set of limits. It works with a single node,
// Sentinel (a failover client) and Redis Cluster, through any go-redis
// [goredis.UniversalClient], which it never modifies.
//
//	rdb := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	s := redis.New(rdb, redis.WithKeyPrefix("tollgate:"))
//	defer s.Close() // does not close rdb
//	err := s.Apply(ctx, 0, ops, results) // Redis TIME is the clock
//
// # One round trip, all or nothing
//
// [Store.Apply] evaluates every op of a batch in one Lua script (apply.lua,
// embedded), run by EVALSHA, with EVAL when the server answers NOSCRIPT
// (also inside pipelines; EVAL loads the script again). The script is a
// port of package algorithms: integers above 2^53 and 128-bit products are
// computed exactly with base-2^24 limbs, so every result and state is the
// one algorithms.Apply returns, which differential tests check (random,
// extreme and clock-going-back sequences, and the storetest suite). On a
// single node the batch is atomic: the script reads every key (one MGET),
// evaluates the ops in order on the state left by the ops before them, and
// writes only when every non-shadow op is allowed, only the keys that an
// allowed non-zero cost changed.
//
// # Redis Cluster
//
// Keys of one decision that hash to one slot (use [WithHashTag] or a tagged
// [WithKeyPrefix]) keep the single-node guarantee. Otherwise the ops are
// grouped by slot, one script call per group, sent in one pipeline that
// go-redis splits per node and runs in parallel. Each group is atomic on
// its own. When a group denies (or fails) after another committed, the
// store sends the committed group the inverse ops (a refund for a charge, a
// forced charge for a refund), in a second round trip. This is weaker than
// all or nothing: between the commit and the refund other decisions see the
// charge and may be denied for it; a refund is not an exact inverse when
// time moved in between (a window rolled over, a bucket refilled; a refund
// never goes below empty) or for Concurrency (the release restarts the
// lease); and if the refund fails, the charge stays until the key resets,
// and the decision reports the error. A decision's results are those of
// its groups' evaluations, so a denied decision reports the ops of the
// refunded groups as allowed, as [store.Store] documents for denied batches.
//
// A dead master is not a dead store. The store tracks each master's last
// answer: an error on a master (a dead connection or a timeout, not an
// error reply) while another master answers is wrapped with
// [store.ErrPartial], which the limiter's circuit breaker does not count,
// so the keys of the healthy masters keep being decided while the dead
// master's decisions follow their fail mode. After three such failures in
// a row, calls to that master are not sent for a second ([ErrNodeDown]),
// then one call probes it. When every master fails, errors are not
// partial and the limiter's breaker opens as for a single node.
//
// A [goredis.Ring] shards by key without slots: give every key of a decision
// the same hash tag ([WithHashTag]) so that its script runs on one shard.
//
// # Time
//
// The script reads Redis TIME (µs), so instances with skewed clocks agree;
// the now passed to Apply is ignored. [WithCallerClock] uses it instead,
// for deterministic tests; TTLs still run on Redis's clock, which
// [WithMinTTL] accounts for.
//
// # TTLs
//
// Every key written gets a TTL: its ResetAfter rounded up to whole
// milliseconds, at least 1 ms, at most 2^53 µs (about 285 years), so no key
// lives forever and none expires while its state still matters. A key whose
// state becomes fresh is deleted. A state is a string "s0 s1 s2", the three
// integers of [algorithms.State]; [Store.Inspect] reads it back.
//
// # Retries
//
// go-redis retries a command after a network error or read timeout, which
// would run a counting script twice. Script calls are therefore issued as
// commands go-redis never retries (they are [goredis.ZeroCopyStringCmd],
// whose reply lands in a reused buffer), without touching the client's
// options: a connection lost after the script ran makes Apply return an
// error, and the batch was charged at most once (the contract's "nothing
// was charged" on error does not hold then: the script may have run). A
// caller that retries may charge twice; the limiter's fail mode decides.
//
// # Client settings
//
// go-redis bounds a command by the context's deadline only when the client
// is created with ContextTimeoutEnabled: true; otherwise a stalled server
// costs its ReadTimeout (3 s by default), whatever limiter.WithStoreTimeout
// says. Create the client with ContextTimeoutEnabled: true, and with
// DialerRetries: 1 so that a refused connection fails fast instead of
// being dialled five times:
//
//	rdb := goredis.NewClient(&goredis.Options{
//		Addr: "localhost:6379", ContextTimeoutEnabled: true, DialerRetries: 1,
//	})
//
// On a Cluster client the store asks go-redis to reload the slot map after
// a connection error, so a failed-over master stops failing as soon as the
// new topology is known. During a slot migration a decision whose keys
// are split between the two nodes gets TRYAGAIN, which means the script
// did not run: the store sends it again up to 5 times, 20 ms apart (within
// the context's deadline), and returns the error only after that.
//
// # Queries
//
// [Store.Peek] answers peeks with plain reads (MGET) and algorithms.Apply in
// Go, no script; [Store.Inspect] returns a key's state and TTL;
// [Store.Reset] deletes keys; [Store.ApplyMany] applies many independent
// decisions in one pipeline. Package redistest starts real redis-server
// processes and clusters for tests.
package redis
