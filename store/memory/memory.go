package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// Store is the in-memory store. Create it with New; the zero Store is not
// usable. It is safe for concurrent use.
type Store struct {
	seeds  [2]maphash.Seed // of keyHash.lo and .hi
	shards []paddedShard
	shift  uint // a hash's shard is hash >> shift
	max    int64
	closed atomic.Bool
	stop   chan struct{} // closed by Close to stop the janitor
	wg     sync.WaitGroup
	// keys counts the keys held, across shards. Only inserts and removals
	// write it: its own cache line keeps it from slowing every Apply.
	_    [64]byte
	keys atomic.Int64
	_    [56]byte
	// dropped counts new keys decided but not remembered for lack of room.
	dropped atomic.Int64
}

// Dropped returns how many new keys were decided as fresh but not
// remembered because the store was full of keys it may not evict (all
// denying). A growing count means the cap is too small for the keys that
// are exhausted at once, or that someone is exhausting keys on purpose.
func (s *Store) Dropped() int64 { return s.dropped.Load() }

var _ store.Store = (*Store)(nil)

// New returns an empty store. It starts a goroutine only with WithJanitor.
func New(opts ...Option) *Store {
	c := config{maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		o(&c)
	}
	n := c.shardCount()
	s := &Store{
		max:    int64(min(c.maxKeys, n*maxPerShard/2)),
		seeds:  [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		shards: make([]paddedShard, n),
		shift:  uint(64 - bits.TrailingZeros(uint(n))),
		stop:   make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].init(&s.keys)
	}
	if c.janitor > 0 {
		s.wg.Add(1)
		go s.janitor(c.janitor)
	}
	return s
}

func (s *Store) hash(key string) keyHash {
	return keyHash{maphash.String(s.seeds[0], key), maphash.String(s.seeds[1], key)}
}

func (s *Store) shardOf(k keyHash) *shard { return &s.shards[k.lo>>s.shift].shard }

func (s *Store) errClosed() error { return fmt.Errorf("memory: %w", store.ErrClosed) }

// Apply evaluates ops as one all-or-nothing batch at now (µs since the
// epoch); see store.Store. It never blocks on anything but the locks of
// the shards holding the batch's keys, and ignores ctx. For batches of up
// to 8 ops it allocates only when a shard's index or entry pages grow.
func (s *Store) Apply(_ context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if s.closed.Load() {
		return s.errClosed()
	}
	if err := store.Validate(ops, results); err != nil {
		return err
	}
	switch len(ops) {
	case 0:
		return nil
	case 1:
		return s.applyOne(now, &ops[0], &results[0])
	}
	return s.applyBatch(now, ops, results)
}

// applyOne is Apply for a single op: one shard, no bookkeeping.
func (s *Store) applyOne(now int64, op *store.Op, res *algorithms.Result) error {
	h := s.hash(op.Key)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return s.errClosed()
	}
	sh.latest = max(sh.latest, now)
	idx, slot := sh.find(h)
	var e *entry
	var st algorithms.State
	if idx >= 0 {
		if e = sh.entry(idx); !e.expired(now) {
			st = e.state
		}
	}
	// In place: st becomes the next state, *res the result.
	algorithms.Update(&st, &op.Params, now, op.Cost, op.Mode, res)
	r := res
	limited := r.Reason == algorithms.ReasonLimited
	if !r.Allowed && !op.Shadow {
		if limited && e != nil {
			e.meta = -abs(e.meta)
		}
		return nil
	}
	switch {
	case st == (algorithms.State{}):
		if e != nil {
			sh.remove(idx, slot)
			sh.shrink()
		}
	case e != nil:
		e.state, e.meta = st, meta(now, r, limited || r.Remaining == 0)
	default:
		if _, ok := s.reserve(now, 1, sh, nil); !ok {
			// See applyBatch: decided as fresh, not remembered.
			s.dropped.Add(1)
			return nil
		}
		sh.insert(h, st, meta(now, r, limited || r.Remaining == 0))
		sh.trim(now)
	}
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// reserve counts need new keys in the store's total, evicting while the
// store is full: from sh (locked), else from any shard it can lock without
// waiting (a shard this batch holds is skipped, so its keys are safe). It
// reports whether there was room.
func (s *Store) reserve(now int64, need int, sh *shard, keep func(keyHash) bool) (evicted, ok bool) {
	for {
		n := s.keys.Load()
		if n+int64(need) <= s.max && sh.n+need <= maxPerShard {
			if s.keys.CompareAndSwap(n, n+int64(need)) {
				return evicted, true
			}
			continue
		}
		if !sh.evict(now, keep) && (sh.n+need > maxPerShard || !s.evictElsewhere(now)) {
			return evicted, false
		}
		evicted = true
	}
}

// evictElsewhere evicts one entry from any shard it can lock at once.
func (s *Store) evictElsewhere(now int64) bool {
	for i := range s.shards {
		other := &s.shards[i].shard
		if !other.mu.TryLock() {
			continue
		}
		ok := !other.closed && other.evict(now, nil)
		other.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// Reset forgets the given keys; keys that do not exist are ignored.
func (s *Store) Reset(_ context.Context, keys ...string) error {
	if s.closed.Load() {
		return s.errClosed()
	}
	for _, key := range keys {
		h := s.hash(key)
		sh := s.shardOf(h)
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			return s.errClosed()
		}
		if idx, slot := sh.find(h); idx >= 0 {
			sh.remove(idx, slot)
			sh.shrink()
		}
		sh.mu.Unlock()
	}
	return nil
}

// Sweep removes every entry expired at now (µs since the epoch) and
// returns how many it removed. It locks one shard at a time.
func (s *Store) Sweep(now int64) int {
	removed := 0
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		if !sh.closed {
			removed += sh.sweep(now)
		}
		sh.mu.Unlock()
	}
	return removed
}

// Len returns the number of keys held, including expired ones not yet
// removed.
func (s *Store) Len() int { return int(s.keys.Load()) }

// latest returns the latest now any Apply has passed.
func (s *Store) latest() int64 {
	var now int64
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		now = max(now, sh.latest)
		sh.mu.Unlock()
	}
	return now
}

func (s *Store) janitor(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if now := s.latest(); now != 0 {
				s.Sweep(now)
			}
		}
	}
}

// Close stops the janitor, if any, and drops every key. Later calls,
// Close included, return an error wrapping store.ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return s.errClosed()
	}
	close(s.stop)
	s.wg.Wait()
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		sh.release()
		sh.mu.Unlock()
	}
	return nil
}
