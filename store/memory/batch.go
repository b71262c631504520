package memory

import (
	"math/bits"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// smallBatch is the largest batch whose bookkeeping lives on the stack.
const smallBatch = 8

// batch is the bookkeeping of one multi-op Apply.
type batch struct {
	hash  []keyHash
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
		hashes  [smallBatch]keyHash
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
		b = batch{make([]keyHash, n), make([]int, n), make([]bool, n), make([]algorithms.State, n), make([]bool, n), make([]bool, n), make([]int32, n)}
	}

	// Lock the shards of the batch in ascending order, each once.
	var locked [MaxShards / 64]uint64
	for i := range ops {
		b.hash[i] = s.hash(ops[i].Key)
		si := b.hash[i].lo >> s.shift
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

	if len(ops) <= smallBatch {
		s.warm(ops, b.hash)
	}
	// Look every key up first, so that the cache misses of different keys
	// overlap; b.state[i] holds the state before op i until evaluated.
	for i := range ops {
		b.prev[i], b.last[i] = -1, true
		for j := i - 1; j >= 0; j-- {
			if b.hash[j] == b.hash[i] {
				b.prev[i], b.last[j] = j, false
				break
			}
		}
		if j := b.prev[i]; j >= 0 {
			b.idx[i] = b.idx[j]
			continue
		}
		sh := s.shardOf(b.hash[i])
		idx, _ := sh.find(b.hash[i])
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
		algorithms.Update(&st, &op.Params, now, op.Cost, op.Mode, &results[i])
		b.state[i] = st
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
	keep := func(k keyHash) bool {
		for i := range ops {
			if b.hash[i] == k {
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
			// No room, and every key that could go is denying: the new
			// keys were decided as fresh and are not remembered; the
			// batch's existing keys are charged as usual.
			for i := range ops {
				b.insert[i] = false
			}
			s.dropped.Add(int64(need))
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
			idx, _ = sh.find(b.hash[i])
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
		case b.insert[i]:
			// Absent keys were counted by reserve.
			sh.insert(b.hash[i], next, meta(now, r, b.limited[i] || r.Remaining == 0))
		}
	}
	// Only now, so that no key of the batch goes while it is written.
	for i := range ops {
		switch {
		case b.insert[i]:
			s.shardOf(b.hash[i]).trim(now)
		case b.last[i] && b.idx[i] >= 0 && b.state[i] == (algorithms.State{}):
			s.shardOf(b.hash[i]).shrink()
		}
	}
	return nil
}

// warm reads, for every op of a small batch at once, what its lookup
// (shard.find) reads: the key's index slot, then the entry the slot points
// to. Each round's loads do not depend on each other, so their cache
// misses overlap, where find, one key after another, would wait for each
// in turn. It changes nothing; the shards are locked.
func (s *Store) warm(ops []store.Op, hash []keyHash) {
	var slots [smallBatch]uint32
	for i := range ops {
		sh := s.shardOf(hash[i])
		slots[i] = sh.slots[hash[i].lo&uint64(len(sh.slots)-1)]
	}
	var sum uint64
	for i := range ops {
		if v := slots[i]; v != 0 && v&tagMask == tagOf(hash[i].lo) {
			e := s.shardOf(hash[i]).entry(int(v&idxMask) - 1)
			// An entry may straddle two cache lines: its key starts it,
			// its meta ends it.
			sum += e.key.hi + uint64(e.meta)
		}
	}
	sink(sum)
}

// sink keeps the loads that produced v from being optimized away.
//
//go:noinline
func sink(v uint64) { _ = v }
