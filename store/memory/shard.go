package memory

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tollgate-go/tollgate/algorithms"
)

// entry is the fixed-size state of one key: 48 bytes, one pointer.
type entry struct {
	key   string
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
	seed   maphash.Seed
	keys   *atomic.Int64 // the store's count of keys, across shards
	n      int           // entries in use: entry(0) .. entry(n-1)
	cursor int           // where the next incremental sweep or eviction looks
	latest int64
	slots  []uint32
	pages  []*page
	// spare holds the keys of the last removed entries, whose memory
	// insert reuses: a key that keeps going back to its fresh state and
	// coming again (removed, then inserted) allocates nothing. The shard
	// owns these strings (insert copied them) and hands them to no one.
	spare  [spareKeys]string
	nspare int
}

// spareKeys is how many removed keys a shard keeps for reuse.
const spareKeys = 4

// paddedShard keeps shards on separate cache lines.
type paddedShard struct {
	shard
	_ [(128 - unsafe.Sizeof(shard{})%128) % 128]byte
}

func (sh *shard) init(seed maphash.Seed, keys *atomic.Int64) {
	sh.seed, sh.keys = seed, keys
	sh.slots = make([]uint32, minSlots)
}

func (sh *shard) entry(i int) *entry { return &sh.pages[i>>pageBits][i&pageMask] }

// find returns the index of key's entry and its slot, or -1 and the empty
// slot where key would go.
func (sh *shard) find(h uint64, key string) (idx, slot int) {
	mask := uint64(len(sh.slots) - 1)
	tag := tagOf(h)
	for i := h & mask; ; i = (i + 1) & mask {
		v := sh.slots[i]
		if v == 0 {
			return -1, int(i)
		}
		if v&tagMask == tag {
			if j := int(v&idxMask) - 1; sh.entry(j).key == key {
				return j, int(i)
			}
		}
	}
}

// insert adds key (copied) with state st and meta m; the caller checked
// that the key is absent and reserved room for it (Store.reserve).
func (sh *shard) insert(h uint64, key string, st algorithms.State, m int64) {
	if (sh.n+1)*4 > len(sh.slots)*3 {
		sh.rehash(len(sh.slots) * 2)
	}
	_, slot := sh.find(h, key)
	i := sh.n
	if i>>pageBits == len(sh.pages) {
		sh.pages = append(sh.pages, new(page))
	}
	*sh.entry(i) = entry{key: sh.copyKey(key), state: st, meta: m}
	sh.slots[slot] = tagOf(h) | uint32(i+1)
	sh.n++
}

// copyKey returns a copy of key that the shard owns, in the memory of a
// spare key when one is long enough (and not twice as long, so a short key
// does not pin a long one's memory).
func (sh *shard) copyKey(key string) string {
	for sh.nspare > 0 {
		sh.nspare--
		sp := sh.spare[sh.nspare]
		sh.spare[sh.nspare] = ""
		if len(sp) >= len(key) && len(sp) <= 2*len(key) {
			b := unsafe.Slice(unsafe.StringData(sp), len(sp))
			copy(b, key)
			return unsafe.String(&b[0], len(key))
		}
	}
	return strings.Clone(key)
}

// remove deletes entry i, whose slot is slot.
func (sh *shard) remove(i, slot int) {
	if sh.nspare < spareKeys {
		sh.spare[sh.nspare] = sh.entry(i).key
		sh.nspare++
	}
	sh.unslot(slot)
	last := sh.n - 1
	if i != last {
		// Move the last entry into the hole and repoint its slot.
		e := sh.entry(last)
		mask := uint64(len(sh.slots) - 1)
		j := maphash.String(sh.seed, e.key) & mask
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
	if len(sh.slots) > minSlots && sh.n*8 < len(sh.slots) {
		sh.rehash(len(sh.slots) / 2)
	}
}

// unslot empties a slot, shifting back later slots of its probe run so
// that every key stays reachable from its home slot.
func (sh *shard) unslot(hole int) {
	mask := len(sh.slots) - 1
	for j := (hole + 1) & mask; sh.slots[j] != 0; j = (j + 1) & mask {
		home := int(maphash.String(sh.seed, sh.entry(int(sh.slots[j]&idxMask)-1).key)) & mask
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
		h := maphash.String(sh.seed, sh.entry(i).key)
		j := h & mask
		for sh.slots[j] != 0 {
			j = (j + 1) & mask
		}
		sh.slots[j] = tagOf(h) | uint32(i+1)
	}
}

// sweepSome removes the expired entries among the next k at the cursor.
func (sh *shard) sweepSome(now int64, k int) {
	for ; k > 0 && sh.n > 0; k-- {
		if sh.cursor >= sh.n {
			sh.cursor = 0
		}
		i := sh.cursor
		if e := sh.entry(i); e.expired(now) {
			sh.removeKey(i) // the last entry moves into i: look at it next
		} else {
			sh.cursor++
		}
	}
}

// removeKey removes entry i, finding its slot.
func (sh *shard) removeKey(i int) {
	e := sh.entry(i)
	_, slot := sh.find(maphash.String(sh.seed, e.key), e.key)
	sh.remove(i, slot)
}

// sweep removes every expired entry and returns how many.
func (sh *shard) sweep(now int64) int {
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
func (sh *shard) evict(now int64, keep func(key string) bool) bool {
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
	sh.spare, sh.nspare = [spareKeys]string{}, 0
}
