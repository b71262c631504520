package ledger

import (
	"sync"
	"sync/atomic"
)

// index lists the subjects seen per period, so that Export can enumerate
// them: the store contract has no way to list keys. It is bounded; per
// period, entries are only appended, so an export reads them by position
// without holding the lock while it writes.
type index struct {
	mu      sync.RWMutex
	limit   int
	n       int
	periods map[int64]*periodIndex
	dropped atomic.Uint64
}

type periodIndex struct {
	seen    map[string]struct{} // tails
	entries []indexEntry
}

type indexEntry struct {
	group int
	tail  string
}

func newIndex(limit int) *index {
	return &index{limit: limit, periods: map[int64]*periodIndex{}}
}

// add indexes the subject of group whose key tail is tail in the period
// starting at p. Periods that start before floor have expired and are
// dropped when a new period is added.
func (x *index) add(p int64, group int, tail []byte, floor int64) {
	x.mu.RLock()
	pi := x.periods[p]
	_, ok := pi.lookup(tail)
	x.mu.RUnlock()
	if ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	pi = x.periods[p]
	if pi == nil {
		for q, old := range x.periods {
			if q < floor {
				x.n -= len(old.entries)
				delete(x.periods, q)
			}
		}
		pi = &periodIndex{seen: map[string]struct{}{}}
		x.periods[p] = pi
	}
	if _, ok := pi.seen[string(tail)]; ok {
		return
	}
	for x.n >= x.limit {
		oldest, found := int64(0), false
		for q := range x.periods {
			if q < p && (!found || q < oldest) {
				oldest, found = q, true
			}
		}
		if !found {
			x.dropped.Add(1)
			return
		}
		x.n -= len(x.periods[oldest].entries)
		delete(x.periods, oldest)
	}
	t := string(tail)
	pi.seen[t] = struct{}{}
	pi.entries = append(pi.entries, indexEntry{group: group, tail: t})
	x.n++
}

func (pi *periodIndex) lookup(tail []byte) (struct{}, bool) {
	if pi == nil {
		return struct{}{}, false
	}
	v, ok := pi.seen[string(tail)]
	return v, ok
}

// period returns the index of the period starting at p, or nil.
func (x *index) period(p int64) *periodIndex {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.periods[p]
}

// chunk copies into dst the entries of pi from position from on, at most
// len(dst), and returns how many it copied. Entries are only appended, so
// positions stay valid even after pi is dropped from the index.
func (x *index) chunk(pi *periodIndex, from int, dst []indexEntry) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if pi == nil || from >= len(pi.entries) {
		return 0
	}
	return copy(dst, pi.entries[from:])
}
