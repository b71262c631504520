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
	seed   maphash.Seed
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
}

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
		seed:   maphash.MakeSeed(),
		shards: make([]paddedShard, n),
		shift:  uint(64 - bits.TrailingZeros(uint(n))),
		stop:   make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].init(s.seed, &s.keys)
	}
	if c.janitor > 0 {
		s.wg.Add(1)
		go s.janitor(c.janitor)
	}
	return s
}

func (s *Store) hash(key string) uint64 { return maphash.String(s.seed, key) }

func (s *Store) shardOf(h uint64) *shard { return &s.shards[h>>s.shift].shard }

func (s *Store) errClosed() error { return fmt.Errorf("memory: %w", store.ErrClosed) }

// Apply evaluates ops as one all-or-nothing batch at now (µs since the
// epoch); see store.Store. It never blocks on anything but the locks of
// the shards holding the batch's keys, and ignores ctx. It does not
// allocate for existing keys or for batches of up to 8 ops, except to copy
// a new key.
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
	idx, slot := sh.find(h, op.Key)
	var e *entry
	var st algorithms.State
	if idx >= 0 {
		if e = sh.entry(idx); !e.expired(now) {
			st = e.state
		}
	}
	next, r := algorithms.Apply(op.Params, st, now, op.Cost, op.Mode)
	*res = r
	limited := r.Reason == algorithms.ReasonLimited
	if !r.Allowed && !op.Shadow {
		if limited && e != nil {
			e.meta = -abs(e.meta)
		}
		return nil
	}
	switch {
	case next == (algorithms.State{}):
		if e != nil {
			sh.remove(idx, slot)
		}
	case e != nil:
		e.state, e.meta = next, meta(now, &r, limited || r.Remaining == 0)
	default:
		if _, ok := s.reserve(now, 1, sh, nil); !ok {
			return fmt.Errorf("memory: %w: no room for %q", store.ErrFull, op.Key)
		}
		sh.insert(h, op.Key, next, meta(now, &r, limited || r.Remaining == 0))
		sh.sweepSome(now, 2)
	}
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// smallBatch is the largest batch whose bookkeeping lives on the stack.
const smallBatch = 8

// batch is the bookkeeping of one multi-op Apply.
type batch struct {
	hash  []uint64
	prev  []int // index of the previous op on the same key, or -1
	last  []bool
	state []algorithms.State // state of op i's key after op i
	// limited[i]: some op on op i's key, up to i, was denied as limited.
	limited []bool
	insert  []bool  // op i is the last on a key that gets a new entry
	idx     []int32 // the entry of op i's key when evaluated, or -1
}

func (s *Store) applyBatch(now int64, ops []store.Op, results []algorithms.Result) error {
	var (
		b       batch
		hashes  [smallBatch]uint64
		prev    [smallBatch]int
		last    [smallBatch]bool
		states  [smallBatch]algorithms.State
		limited [smallBatch]bool
		insert  [smallBatch]bool
		idx     [smallBatch]int32
	)
	if n := len(ops); n <= smallBatch {
		b = batch{hashes[:n], prev[:n], last[:n], states[:n], limited[:n], insert[:n], idx[:n]}
	} else {
		b = batch{make([]uint64, n), make([]int, n), make([]bool, n), make([]algorithms.State, n), make([]bool, n), make([]bool, n), make([]int32, n)}
	}

	// Lock the shards of the batch in ascending order, each once.
	var locked [MaxShards / 64]uint64
	for i := range ops {
		b.hash[i] = s.hash(ops[i].Key)
		si := b.hash[i] >> s.shift
		locked[si/64] |= 1 << (si % 64)
	}
	words := (len(s.shards) + 63) / 64
	for w, word := range locked[:words] {
		for ; word != 0; word &= word - 1 {
			s.shards[w*64+bits.TrailingZeros64(word)].mu.Lock()
		}
	}
	defer func() {
		for w, word := range locked[:words] {
			for ; word != 0; word &= word - 1 {
				s.shards[w*64+bits.TrailingZeros64(word)].mu.Unlock()
			}
		}
	}()
	for i := range ops {
		sh := s.shardOf(b.hash[i])
		if sh.closed {
			return s.errClosed()
		}
		sh.latest = max(sh.latest, now)
	}

	// Look every key up first, so that the cache misses of different keys
	// overlap; b.state[i] holds the state before op i until evaluated.
	for i := range ops {
		b.prev[i], b.last[i] = -1, true
		for j := i - 1; j >= 0; j-- {
			if b.hash[j] == b.hash[i] && ops[j].Key == ops[i].Key {
				b.prev[i], b.last[j] = j, false
				break
			}
		}
		if j := b.prev[i]; j >= 0 {
			b.idx[i] = b.idx[j]
			continue
		}
		sh := s.shardOf(b.hash[i])
		idx, _ := sh.find(b.hash[i], ops[i].Key)
		b.idx[i], b.state[i] = int32(idx), algorithms.State{}
		if idx >= 0 {
			if e := sh.entry(idx); !e.expired(now) {
				b.state[i] = e.state
			}
		}
	}
	// Evaluate every op on the state left by the ops before it.
	for i := range ops {
		op := &ops[i]
		st := b.state[i]
		if j := b.prev[i]; j >= 0 {
			st = b.state[j]
		}
		b.state[i], results[i] = algorithms.Apply(op.Params, st, now, op.Cost, op.Mode)
		b.limited[i] = results[i].Reason == algorithms.ReasonLimited || (b.prev[i] >= 0 && b.limited[b.prev[i]])
	}

	if !store.Admitted(ops, results) {
		// Nothing is charged; keys that denied are marked denying.
		for i := range ops {
			if b.last[i] && b.limited[i] && b.idx[i] >= 0 {
				e := s.shardOf(b.hash[i]).entry(int(b.idx[i]))
				e.meta = -abs(e.meta)
			}
		}
		return nil
	}

	// Make room for the new keys first, so that a full store charges
	// nothing. Eviction spares the batch's own keys.
	for i := range ops {
		b.insert[i] = b.last[i] && b.idx[i] < 0 && b.state[i] != (algorithms.State{})
	}
	keep := func(key string) bool {
		for i := range ops {
			if ops[i].Key == key {
				return true
			}
		}
		return false
	}
	need := 0
	var evictFrom *shard // a shard that gets a new key
	for i := range ops {
		if b.insert[i] {
			need++
			if sh := s.shardOf(b.hash[i]); evictFrom == nil || sh.n > evictFrom.n {
				evictFrom = sh
			}
		}
	}
	// Entries move when one is removed; until then, b.idx holds.
	moved := false
	if need > 0 {
		evicted, ok := s.reserve(now, need, evictFrom, keep)
		if !ok {
			return fmt.Errorf("memory: %w: no room for %d new keys", store.ErrFull, need)
		}
		moved = evicted
	}

	// Write each key's final state.
	for i := range ops {
		if !b.last[i] {
			continue
		}
		sh := s.shardOf(b.hash[i])
		r := &results[i]
		idx := int(b.idx[i])
		if moved && !b.insert[i] {
			idx, _ = sh.find(b.hash[i], ops[i].Key)
		}
		switch next := b.state[i]; {
		case next == (algorithms.State{}):
			if idx >= 0 {
				sh.removeKey(idx)
				moved = true
			}
		case idx >= 0:
			e := sh.entry(idx)
			e.state, e.meta = next, meta(now, r, b.limited[i] || r.Remaining == 0)
		default:
			// Absent keys were counted by reserve: b.insert[i] is set.
			sh.insert(b.hash[i], ops[i].Key, next, meta(now, r, b.limited[i] || r.Remaining == 0))
		}
	}
	// Only now, so that no key of the batch goes while it is written.
	for i := range ops {
		if b.insert[i] {
			s.shardOf(b.hash[i]).sweepSome(now, 2)
		}
	}
	return nil
}

// reserve counts need new keys in the store's total, evicting while the
// store is full: from sh (locked), else from any shard it can lock without
// waiting (a shard this batch holds is skipped, so its keys are safe). It
// reports whether there was room.
func (s *Store) reserve(now int64, need int, sh *shard, keep func(string) bool) (evicted, ok bool) {
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
		if idx, slot := sh.find(h, key); idx >= 0 {
			sh.remove(idx, slot)
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
