package lease

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// maxLocalOps is the largest batch served from leases; larger batches go
// to the backing store as they are.
const maxLocalOps = 8

// maxWaits is how many top-ups a caller waits for before it asks the
// backing store itself.
const maxWaits = 16

// Store is a [store.Store] that serves hot keys from local leases on a
// backing store. The zero Store is not usable; call [New]. A Store is safe
// for concurrent use.
type Store struct {
	backing store.Store
	cfg     config

	mu     sync.RWMutex
	leases map[string]*entry // bounded by cfg.maxKeys

	closed  atomic.Bool
	done    chan struct{}
	runners atomic.Int32  // Run goroutines running
	wake    chan struct{} // cap 1: a lease fell below half its size
}

var _ store.Store = (*Store)(nil)

// New returns a Store that leases the quota of hot keys (see [WithHotKeys])
// from backing and passes everything else to it. It starts no goroutine:
// leases are topped up on the calling goroutine when they run out, or in
// the background by [Store.Run]. Close does not close backing.
func New(backing store.Store, opts ...Option) *Store {
	s := &Store{
		backing: backing,
		cfg:     config{size: DefaultLeaseSize, maxKeys: defaultMaxKeys, margin: 100_000},
		leases:  make(map[string]*entry),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	return s
}

// entry is the lease of one key. Its fields are guarded by mu.
type entry struct {
	mu     sync.Mutex
	key    string
	params algorithms.Params
	size   int64 // most units held
	window bool  // FixedWindow: units die at expiry

	units  int64 // leased and not used
	expiry int64 // caller µs from which units are void (MaxInt64 for buckets)

	backRemaining int64 // the backing store's Remaining at the last answer
	resetAt       int64 // caller µs: the last answer's now + ResetAfter

	deniedUntil int64 // caller µs: a cost >= deniedCost is denied until then
	deniedCost  int64

	refilling  bool          // a top-up is in flight (one at a time)
	filled     chan struct{} // closed when it ends; nil when none
	wantRefill bool          // below half: Run should top up
	refillNow  int64         // the now that asked for the top-up
}

func leasable(op *store.Op) bool {
	switch op.Params.Kind {
	case algorithms.FixedWindow, algorithms.TokenBucket, algorithms.GCRA:
	default:
		return false
	}
	return op.Cost > 0 && op.Mode == algorithms.Normal && !op.Shadow && op.Params.Limit > 0
}

// entryFor returns the lease for op, creating it for a hot key, or nil when
// op is served by the backing store alone.
func (s *Store) entryFor(op *store.Op) *entry {
	if s.cfg.hot == nil || !leasable(op) {
		return nil
	}
	s.mu.RLock()
	e := s.leases[op.Key]
	s.mu.RUnlock()
	if e != nil && e.params == op.Params {
		return e
	}
	if e == nil && !s.cfg.hot(op.Key) {
		return nil
	}
	capacity := op.Params.Capacity()
	size := min(max(1, s.cfg.size(op.Params)), capacity)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.leases[op.Key]
	if old != nil && old.params == op.Params {
		return old
	}
	if old == nil && len(s.leases) >= s.cfg.maxKeys {
		return nil
	}
	// A key's parameters changed (a policy reload): a new lease replaces
	// the old one, whose units are dropped (charged, never admitted).
	e = &entry{key: strings.Clone(op.Key), params: op.Params, size: size, window: op.Params.Kind == algorithms.FixedWindow}
	if !e.window {
		e.expiry = math.MaxInt64
	}
	s.leases[e.key] = e
	return e
}

type outcome uint8

const (
	taken outcome = iota
	deniedLocally
	miss
)

// take serves cost from the lease at now, writing r. async reports whether
// a Run goroutine may top the lease up; wake is whether to signal it. On a
// miss while a top-up is in flight, filled is closed when it ends.
func (e *entry) take(now, cost int64, r *algorithms.Result, async bool) (o outcome, wake bool, filled <-chan struct{}) {
	e.mu.Lock()
	if now >= e.expiry {
		e.units = 0
	}
	switch {
	case e.units >= cost:
		e.units -= cost
		*r = algorithms.Result{Allowed: true, Remaining: e.remaining(), ResetAfter: max(0, e.resetAt-now)}
		if async && e.units*2 < e.size && !e.wantRefill && !e.refilling {
			e.wantRefill, e.refillNow, wake = true, now, true
		}
		o = taken
	case now < e.deniedUntil && cost >= e.deniedCost:
		*r = algorithms.Result{Reason: algorithms.ReasonLimited, Remaining: e.remaining(),
			RetryAfter: e.deniedUntil - now, ResetAfter: max(0, e.resetAt-now)}
		o = deniedLocally
	case cost <= e.size:
		o, filled = miss, e.filled
	default:
		o = miss // no top-up will cover it: do not wait for one
	}
	e.mu.Unlock()
	return o, wake, filled
}

// remaining is what this instance believes is left: its lease plus the
// backing store's last answer. Callers hold e.mu.
func (e *entry) remaining() int64 {
	return min(e.units+e.backRemaining, e.params.Capacity())
}

// giveBack returns units taken by take for a batch that did not commit.
func (e *entry) giveBack(cost int64) {
	e.mu.Lock()
	e.units += cost
	e.mu.Unlock()
}

// claim starts a top-up for an op of cost at now: it returns how many units
// to ask the backing store for on top of cost, 0 when another top-up is in
// flight or the lease is full. A non-zero claim must be ended by settle.
func (e *entry) claim(now, cost int64) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refilling {
		return 0
	}
	if now >= e.expiry {
		e.units = 0
	}
	want := min(e.size-e.units, e.params.Capacity()-cost)
	if want <= 0 {
		return 0
	}
	e.refilling, e.filled = true, make(chan struct{})
	return want
}

// endClaim ends a claim. Callers hold e.mu.
func (e *entry) endClaim() {
	e.refilling = false
	close(e.filled)
	e.filled = nil
}

// settle records the backing store's answer r, given at now, to an op of
// cost that asked for extra units beyond it (claimed is whether extra came
// from a claim). On an allowed r the extra units join the lease. r's
// Remaining becomes this instance's view (lease included).
func (e *entry) settle(now, cost, extra int64, claimed bool, r *algorithms.Result) {
	e.mu.Lock()
	if claimed {
		e.endClaim()
	}
	e.backRemaining = r.Remaining
	e.resetAt = now + r.ResetAfter
	if r.Allowed && extra > 0 {
		if e.window {
			// The units belong to the window the backing store answered
			// in: they are void once it ends. A lease still held from an
			// earlier window is void too.
			exp := now + r.ResetAfter
			if now >= e.expiry || exp > e.expiry+e.params.Period/2 {
				e.units = 0
			}
			e.expiry = exp
		}
		e.units += extra
		e.deniedUntil, e.wantRefill = 0, false
	}
	if !r.Allowed && r.Reason == algorithms.ReasonLimited && r.RetryAfter > 0 && extra == 0 {
		e.deniedUntil, e.deniedCost = now+r.RetryAfter, cost
	}
	r.Remaining = e.remaining()
	e.mu.Unlock()
}

// unclaim ends a claim whose backing call failed.
func (e *entry) unclaim() {
	e.mu.Lock()
	e.endClaim()
	e.mu.Unlock()
}

// Apply applies the batch ops at now (microseconds; passed to the backing
// store as is). A batch whose every op has a lease that covers its cost is
// served locally, with no call to the backing store; any other batch goes
// to the backing store, in one call when nothing is leased, and then tops
// up the leases of its hot ops (see the package documentation).
func (s *Store) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if s.closed.Load() {
		return fmt.Errorf("lease: %w", store.ErrClosed)
	}
	if s.cfg.hot == nil || len(ops) == 0 || len(ops) > maxLocalOps {
		return s.backing.Apply(ctx, now, ops, results)
	}
	if err := store.Validate(ops, results); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	var ents [maxLocalOps]*entry
	for i := range ops {
		if ents[i] = s.entryFor(&ops[i]); ents[i] == nil {
			return s.backing.Apply(ctx, now, ops, results)
		}
	}
	// A lease being topped up is waited for, so that the callers that find
	// it short share one backing call; a top-up that fails or is denied
	// ends the wait, and then the caller asks the backing store itself, as
	// it does when others keep taking the new units first.
	for range maxWaits {
		filled := s.serveLocally(now, ops, ents[:len(ops)], results)
		if filled == nil {
			return nil
		}
		if filled == noTopUp {
			break
		}
		select {
		case <-filled:
		case <-ctx.Done():
			return fmt.Errorf("lease: waiting for a top-up of %q: %w", ops[0].Key, ctx.Err())
		}
	}
	return s.applyBacking(ctx, now, ops, ents[:len(ops)], results)
}

// noTopUp is what serveLocally returns for a short lease with no top-up in
// flight.
var noTopUp = make(chan struct{})

// serveLocally serves a batch whose every op is leased from the leases and
// returns nil. When a lease does not cover its op, it takes nothing and
// returns the channel closed when that lease's top-up ends, or noTopUp.
func (s *Store) serveLocally(now int64, ops []store.Op, ents []*entry, results []algorithms.Result) <-chan struct{} {
	async := s.runners.Load() > 0
	denied, wake := false, false
	for i := range ops {
		o, w, filled := ents[i].take(now, ops[i].Cost, &results[i], async)
		wake = wake || w
		switch o {
		case deniedLocally:
			denied = true
		case miss:
			s.giveBackTaken(ops[:i], ents, results)
			if filled == nil {
				return noTopUp
			}
			return filled
		}
	}
	if denied {
		// All or nothing: the ops that fit report what they would have had.
		s.giveBackTaken(ops, ents, results)
	}
	if wake {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *Store) giveBackTaken(ops []store.Op, ents []*entry, results []algorithms.Result) {
	for i := range ops {
		if results[i].Allowed {
			ents[i].giveBack(ops[i].Cost)
		}
	}
}

// applyBacking sends a batch of leased ops to the backing store, each op's
// cost raised by the units that top its lease up. If the raised batch is
// denied, it asks again with what the backing store said was left, then
// with the ops' own costs, so that a top-up never denies a batch that
// would have been admitted.
func (s *Store) applyBacking(ctx context.Context, now int64, ops []store.Op, ents []*entry, results []algorithms.Result) error {
	var (
		buf     [maxLocalOps]store.Op
		extra   [maxLocalOps]int64
		claimed [maxLocalOps]bool
	)
	raised := buf[:len(ops)]
	copy(raised, ops)
	for i, e := range ents {
		extra[i] = e.claim(now, ops[i].Cost)
		claimed[i] = extra[i] > 0
	}
	for attempt := 0; ; attempt++ {
		any := false
		for i := range raised {
			raised[i].Cost = ops[i].Cost + extra[i]
			any = any || extra[i] > 0
		}
		err := s.backing.Apply(ctx, now, raised, results)
		if err != nil {
			for i, e := range ents {
				if claimed[i] {
					e.unclaim()
				}
			}
			return err
		}
		admitted := store.Admitted(raised, results)
		if admitted || !any {
			for i, e := range ents {
				x := extra[i]
				if !admitted {
					x = 0
				}
				e.settle(now, ops[i].Cost, x, claimed[i], &results[i])
			}
			return nil
		}
		for i := range raised {
			r := &results[i]
			switch {
			case extra[i] == 0 || r.Allowed:
			case attempt == 0 && r.Reason == algorithms.ReasonLimited:
				extra[i] = min(extra[i], max(0, r.Remaining-ops[i].Cost))
			default:
				extra[i] = 0
			}
		}
		if attempt > 0 {
			clear(extra[:])
		}
	}
}

// Reset forgets the leases of keys held by this Store (their units are not
// returned: the keys start afresh) and resets keys in the backing store.
// Leases that other instances hold on these keys stay theirs.
func (s *Store) Reset(ctx context.Context, keys ...string) error {
	if s.closed.Load() {
		return fmt.Errorf("lease: %w", store.ErrClosed)
	}
	for _, k := range keys {
		s.mu.RLock()
		e := s.leases[k]
		s.mu.RUnlock()
		if e != nil {
			e.mu.Lock()
			e.units, e.deniedUntil, e.backRemaining = 0, 0, 0
			e.mu.Unlock()
		}
	}
	return s.backing.Reset(ctx, keys...)
}

// Close marks the store closed and stops [Store.Run]. Unused units are not
// returned: call [Store.Release] first to give them back. Close does not
// close the backing store. A second Close returns store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("lease: %w", store.ErrClosed)
	}
	close(s.done)
	return nil
}
