package memory

import (
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tollgate-go/tollgate/algorithms"
)

// keyHash identifies a key by two 64-bit hashes under independent random
// seeds: lo places the key (its shard, its slot, its tag), and the pair
// stands for the key, which the store does not keep. Two keys share an
// entry only if both hashes collide: for a billion keys held at once, the
// chance that any two do is below 2^-67, far below that of a memory error;
// and since the seeds are random per Store and never leave the process,
// keys cannot be chosen to collide. Keeping no key makes an entry
// pointer-free and fixed-size, makes a lookup touch the index and the
// entry only, and makes a new key cost no allocation. The cache ristretto
// identifies its keys the same way.
type keyHash struct{ lo, hi uint64 }

// entry is the fixed-size state of one key: 48 bytes, no pointer.
type entry struct {
	// key identifies the entry's key by its two hashes; the key itself is
	// not kept (see keyHash).
	key   keyHash
	state algorithms.State
	// meta is the deadline, in µs since the epoch, after which state is
	// the fresh state; negated while the key is denying (exhausted, or
	// its last op was denied), which protects it from eviction.
	meta int64
}

// deadline returns when e expires, and whether it is denying.
func (e *entry) deadline() (int64, bool) {
	if e.meta < 0 {
		return -e.meta, true
	}
	return e.meta, false
}

func (e *entry) expired(now int64) bool {
	d, _ := e.deadline()
	return now >= d
}

// meta encodes the deadline of a state written at now with result r.
func meta(now int64, r *algorithms.Result, denying bool) int64 {
	d := int64(math.MaxInt64)
	if r.ResetAfter <= math.MaxInt64-now {
		d = max(now+r.ResetAfter, 1)
	}
	if denying {
		return -d
	}
	return d
}

// Entries live in pages, so growing never copies them and a shard's
// unused capacity is at most one page.
const (
	pageBits = 8
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
)

type page [pageSize]entry

// A slot of the index is 0 when empty, else the entry's index+1 in the low
// 24 bits and 8 bits of the key's hash (tag) above, so that a probe
// compares a key only when the tags match.
const (
	idxMask  = 1<<24 - 1
	tagMask  = ^uint32(idxMask)
	minSlots = 16
)

func tagOf(h uint64) uint32 { return uint32(h>>8) & tagMask }

// shard is one lock's worth of keys: an open-addressing index (linear
// probing, at most 3/4 full, backward-shift deletion) into dense entries.
type shard struct {
	mu     sync.Mutex
	closed bool
	keys   *atomic.Int64 // the store's count of keys, across shards
	n      int           // entries in use: entry(0) .. entry(n-1)
	cursor int           // where the next eviction looks
	latest int64
	slots  []uint32
	pages  []*page
}

// paddedShard keeps shards on separate cache lines.
type paddedShard struct {
	shard
	_ [(128 - unsafe.Sizeof(shard{})%128) % 128]byte
}

func (sh *shard) init(keys *atomic.Int64) {
	sh.keys = keys
	sh.slots = make([]uint32, minSlots)
}

func (sh *shard) entry(i int) *entry { return &sh.pages[i>>pageBits][i&pageMask] }

// find returns the index of k's entry and its slot, or -1 and the empty
// slot where k would go.
func (sh *shard) find(k keyHash) (idx, slot int) {
	mask := uint64(len(sh.slots) - 1)
	tag := tagOf(k.lo)
	for i := k.lo & mask; ; i = (i + 1) & mask {
		v := sh.slots[i]
		if v == 0 {
			return -1, int(i)
		}
		if v&tagMask == tag {
			if j := int(v&idxMask) - 1; sh.entry(j).key == k {
				return j, int(i)
			}
		}
	}
}

// insert adds k with state st and meta m; the caller checked that k is
// absent and reserved room for it (Store.reserve).
func (sh *shard) insert(k keyHash, st algorithms.State, m int64) {
	if (sh.n+1)*4 > len(sh.slots)*3 {
		sh.rehash(len(sh.slots) * 2)
	}
	_, slot := sh.find(k)
	i := sh.n
	if i>>pageBits == len(sh.pages) {
		sh.pages = append(sh.pages, new(page))
	}
	*sh.entry(i) = entry{key: k, state: st, meta: m}
	sh.slots[slot] = tagOf(k.lo) | uint32(i+1)
	sh.n++
}

// remove deletes entry i, whose slot is slot.
func (sh *shard) remove(i, slot int) {
	sh.unslot(slot)
	last := sh.n - 1
	if i != last {
		// Move the last entry into the hole and repoint its slot.
		e := sh.entry(last)
		mask := uint64(len(sh.slots) - 1)
		j := e.key.lo & mask
		for int(sh.slots[j]&idxMask) != last+1 {
			j = (j + 1) & mask
		}
		sh.slots[j] = sh.slots[j]&tagMask | uint32(i+1)
		*sh.entry(i) = *e
	}
	*sh.entry(last) = entry{}
	sh.n = last
	sh.keys.Add(-1)
	if sh.cursor >= sh.n {
		sh.cursor = 0
	}
	// Keep one spare page, so a key coming and going does not churn pages.
	if p := len(sh.pages); p >= 2 && sh.n <= (p-2)*pageSize {
		sh.pages[p-1] = nil
		sh.pages = sh.pages[:p-1]
	}
}

// shrink halves the index while it is less than 1/8 full. Removals call
// it once they are done, so that a sweep rebuilds the index at most once.
func (sh *shard) shrink() {
	size := len(sh.slots)
	for size > minSlots && sh.n*8 < size {
		size /= 2
	}
	if size != len(sh.slots) {
		sh.rehash(size)
	}
}

// unslot empties a slot, shifting back later slots of its probe run so
// that every key stays reachable from its home slot.
func (sh *shard) unslot(hole int) {
	mask := len(sh.slots) - 1
	for j := (hole + 1) & mask; sh.slots[j] != 0; j = (j + 1) & mask {
		home := int(sh.entry(int(sh.slots[j]&idxMask)-1).key.lo) & mask
		// The entry at j may fill the hole if its home is not in (hole, j].
		if (j-home)&mask >= (j-hole)&mask {
			sh.slots[hole] = sh.slots[j]
			hole = j
		}
	}
	sh.slots[hole] = 0
}

// rehash rebuilds the index with size slots.
func (sh *shard) rehash(size int) {
	sh.slots = make([]uint32, size)
	mask := uint64(size - 1)
	for i := range sh.n {
		h := sh.entry(i).key.lo
		j := h & mask
		for sh.slots[j] != 0 {
			j = (j + 1) & mask
		}
		sh.slots[j] = tagOf(h) | uint32(i+1)
	}
}

// keepExpired is how long after its deadline an entry survives trim
// (µs): a key that comes back within it reuses its entry in place rather
// than being removed and inserted again.
const keepExpired = 1_000_000

// trim runs after a write that added keys to the shard. When the next
// insert would grow the index, it removes the entries expired for longer
// than keepExpired, and grows the index now if too few went to make room
// for a while. Sweeping only then, not a little on every insert, keeps
// keys that come back from churning, and each sweep is paid for by the
// inserts since the previous one, as growth is.
func (sh *shard) trim(now int64) {
	if (sh.n+2)*4 <= len(sh.slots)*3 {
		return
	}
	sh.sweepExpired(now - keepExpired)
	if sh.n*8 > len(sh.slots)*5 {
		sh.rehash(len(sh.slots) * 2)
	}
}

// removeKey removes entry i, finding its slot.
func (sh *shard) removeKey(i int) {
	e := sh.entry(i)
	_, slot := sh.find(e.key)
	sh.remove(i, slot)
}

// sweep removes every expired entry, shrinks the index to fit, and
// returns how many entries it removed.
func (sh *shard) sweep(now int64) int {
	removed := sh.sweepExpired(now)
	sh.shrink()
	return removed
}

// sweepExpired removes every entry expired at now and returns how many.
func (sh *shard) sweepExpired(now int64) int {
	removed := 0
	for i := sh.n - 1; i >= 0; i-- {
		if sh.entry(i).expired(now) {
			sh.removeKey(i) // the entry moved into i was already looked at
			removed++
		}
	}
	return removed
}

// evictScan is how many entries an eviction examines.
const evictScan = 64

// evict removes one entry to make room, at now: an expired one, or else
// the one nearest to its deadline among evictScan examined that is not
// denying and for which keep returns false. It reports whether it did.
func (sh *shard) evict(now int64, keep func(k keyHash) bool) bool {
	best, bestDeadline := -1, int64(0)
	n := min(evictScan, sh.n)
	for k := 0; k < n; k++ {
		if sh.cursor >= sh.n {
			sh.cursor = 0
		}
		i := sh.cursor
		sh.cursor++
		e := sh.entry(i)
		d, denying := e.deadline()
		if (denying && now < d) || (keep != nil && keep(e.key)) {
			continue
		}
		if now >= d {
			best = i
			break
		}
		if best < 0 || d < bestDeadline {
			best, bestDeadline = i, d
		}
	}
	if best < 0 {
		return false
	}
	sh.removeKey(best)
	return true
}

// release drops everything the shard holds.
func (sh *shard) release() {
	sh.keys.Add(int64(-sh.n))
	sh.closed = true
	sh.slots, sh.pages, sh.n, sh.cursor = nil, nil, 0, 0
}
