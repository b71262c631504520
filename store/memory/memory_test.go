package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/storetest"
)

const (
	second = int64(1_000_000)
	hour   = 3600 * second
	t0     = storetest.DefaultStart
)

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{name: "default"},
		{name: "one shard", opts: []Option{WithShards(1)}},
		{name: "max shards", opts: []Option{WithShards(MaxShards)}},
		{name: "janitor", opts: []Option{WithJanitor(time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return New(tt.opts...) })
		})
	}
}

func TestDifferentialManySeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("many seeds")
	}
	seeds := make([]uint64, 20)
	for i := range seeds {
		seeds[i] = uint64(1000 + i)
	}
	storetest.Run(t, func(t *testing.T) store.Store { return New(WithShards(2)) },
		storetest.WithSeeds(seeds...), storetest.WithConcurrency(0, 0))
}

func apply(t *testing.T, s *Store, now int64, ops ...store.Op) []algorithms.Result {
	t.Helper()
	res := make([]algorithms.Result, len(ops))
	if err := s.Apply(context.Background(), now, ops, res); err != nil {
		t.Fatalf("Apply(%d, %+v): %v", now, ops, err)
	}
	return res
}

var perHour = algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: hour}

// TestFloodDoesNotEvictDenyingKeys fills a small store far past its cap
// with new keys: an exhausted key must stay exhausted, although its
// deadline is the nearest, which would make it the first to go.
func TestFloodDoesNotEvictDenyingKeys(t *testing.T) {
	perTenSeconds := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 10 * second}
	for _, tt := range []struct {
		name string
		op   store.Op // makes "victim" denying
	}{
		{name: "exhausted", op: store.Op{Key: "victim", Params: perTenSeconds, Cost: 1}},
		{name: "forced past the limit", op: store.Op{Key: "victim", Params: perTenSeconds, Cost: 5, Mode: algorithms.Force}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(WithShards(1), WithMaxKeys(16))
			defer s.Close()
			apply(t, s, t0, tt.op)
			for i := range 10_000 {
				tb := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 2, Period: hour}
				if i%2 == 0 {
					apply(t, s, t0+int64(i), store.Op{Key: fmt.Sprintf("flood%d", i), Params: tb, Cost: 1})
				} else {
					apply(t, s, t0+int64(i), store.Op{Key: fmt.Sprintf("flood%d-a", i), Params: tb, Cost: 1},
						store.Op{Key: fmt.Sprintf("flood%d-b", i), Params: tb, Cost: 1})
				}
				if got := s.Len(); got > 16 {
					t.Fatalf("after %d new keys: Len %d, want at most 16", i+1, got)
				}
			}
			if r := apply(t, s, t0+10_000, store.Op{Key: "victim", Params: perTenSeconds, Cost: 1})[0]; r.Allowed {
				t.Fatalf("exhausted key after a flood of 10,000 new keys: %+v, want denied", r)
			}
		})
	}
}

// TestFullOfDenyingKeys: when no key may be evicted, a new key is decided
// as fresh but not remembered, and the batch's existing keys are charged;
// once the denying keys expire, there is room again.
func TestFullOfDenyingKeys(t *testing.T) {
	s := New(WithShards(1), WithMaxKeys(8))
	defer s.Close()
	for i := range 7 {
		apply(t, s, t0, store.Op{Key: fmt.Sprintf("k%d", i), Params: perHour, Cost: 1})
	}
	// A batch's own keys are never evicted for it: with seven denying keys
	// and this one, a batch of it and a new key finds no room.
	roomy := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: hour}
	apply(t, s, t0, store.Op{Key: "global", Params: roomy, Cost: 1})
	mixed := []store.Op{{Key: "global", Params: roomy, Cost: 1}, {Key: "new", Params: perHour, Cost: 1}}
	res := make([]algorithms.Result, 2)
	if err := s.Apply(context.Background(), t0+1, mixed, res); err != nil || !store.Admitted(mixed, res) {
		t.Fatalf("mixed batch: err %v, results %+v; want admitted", err, res)
	}
	if r := apply(t, s, t0+1, store.Op{Key: "global", Params: roomy})[0]; r.Remaining != 98 {
		t.Fatalf("global remaining %d, want 98: the existing key is charged though the new one is not remembered", r.Remaining)
	}
	if got := s.Dropped(); got != 1 {
		t.Fatalf("Dropped() = %d after the mixed batch, want 1", got)
	}
	// Now every key is denying.
	if err := s.Reset(context.Background(), "global"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, t0, store.Op{Key: "k7", Params: perHour, Cost: 1})
	other := store.Op{Key: "k0", Params: perHour, Cost: 1}
	for n, ops := range [][]store.Op{
		{{Key: "new", Params: perHour, Cost: 1}},
		{{Key: "new", Params: perHour, Cost: 1}},
		{{Key: "new", Params: perHour, Cost: 1}, {Key: "new2", Params: perHour, Cost: 1}},
		{other, {Key: "new", Params: perHour, Cost: 1, Shadow: true}},
	} {
		res := make([]algorithms.Result, len(ops))
		if err := s.Apply(context.Background(), t0+1, ops, res); err != nil {
			t.Fatalf("batch %d: %v, want no error", n, err)
		}
		if ops[0].Key == "k0" {
			// k0 denies, so the batch needs no room.
			if store.Admitted(ops, res) {
				t.Fatalf("batch with a denying op: results %+v; want a denial", res)
			}
			continue
		}
		if !store.Admitted(ops, res) {
			t.Fatalf("batch %d on a store full of denying keys: %+v, want admitted: new keys are decided as fresh", n, res)
		}
	}
	if got := s.Len(); got != 8 {
		t.Fatalf("Len %d, want 8: no new key is remembered", got)
	}
	if got := s.Dropped(); got != 5 {
		t.Fatalf("Dropped() = %d, want 5", got)
	}
	// A peek and a denial need no room.
	apply(t, s, t0+1, store.Op{Key: "new", Params: perHour})
	// An hour later the window ended: expired keys make room.
	if r := apply(t, s, t0+hour, store.Op{Key: "new", Params: perHour, Cost: 1})[0]; !r.Allowed {
		t.Fatalf("after the window: %+v, want allowed", r)
	}
}

// TestEvictsFromAnotherShard: a full store whose shard for a new key
// holds only denying keys evicts from another shard.
func TestEvictsFromAnotherShard(t *testing.T) {
	s := New(WithShards(2), WithMaxKeys(4))
	defer s.Close()
	var inShard [2][]string
	for i := 0; len(inShard[0]) < 3 || len(inShard[1]) < 2; i++ {
		k := fmt.Sprintf("k%d", i)
		sh := s.hash(k).lo >> s.shift
		inShard[sh] = append(inShard[sh], k)
	}
	roomy := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: hour}
	apply(t, s, t0, store.Op{Key: inShard[0][0], Params: perHour, Cost: 1}) // denying
	apply(t, s, t0, store.Op{Key: inShard[0][1], Params: perHour, Cost: 1}) // denying
	apply(t, s, t0, store.Op{Key: inShard[1][0], Params: roomy, Cost: 1})
	apply(t, s, t0, store.Op{Key: inShard[1][1], Params: roomy, Cost: 1})
	if r := apply(t, s, t0, store.Op{Key: inShard[0][2], Params: perHour, Cost: 1})[0]; !r.Allowed {
		t.Fatalf("new key: %+v, want allowed", r)
	}
	if got := s.Len(); got != 4 {
		t.Fatalf("Len %d, want 4", got)
	}
	for _, k := range inShard[0][:2] {
		if r := apply(t, s, t0, store.Op{Key: k, Params: perHour, Cost: 1})[0]; r.Allowed {
			t.Fatalf("denying key %s was evicted: %+v", k, r)
		}
	}
}

// TestEvictionPrefersExpired: with one live key and expired ones, a new
// key evicts an expired entry, not the live one.
func TestEvictionPrefersExpired(t *testing.T) {
	s := New(WithShards(1), WithMaxKeys(4))
	defer s.Close()
	short := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: second}
	long := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: hour}
	apply(t, s, t0, store.Op{Key: "live", Params: long, Cost: 3})
	for i := range 3 {
		apply(t, s, t0, store.Op{Key: fmt.Sprintf("short%d", i), Params: short, Cost: 1})
	}
	for i := range 3 {
		apply(t, s, t0+2*second, store.Op{Key: fmt.Sprintf("new%d", i), Params: long, Cost: 1})
	}
	if r := apply(t, s, t0+2*second, store.Op{Key: "live", Params: long})[0]; r.Remaining != 7 {
		t.Fatalf("live key after evictions: Remaining %d, want 7", r.Remaining)
	}
}

func TestSweep(t *testing.T) {
	s := New(WithShards(4))
	defer s.Close()
	p := algorithms.Params{Kind: algorithms.GCRA, Limit: 10, Period: second}
	for i := range 1000 {
		apply(t, s, t0, store.Op{Key: fmt.Sprintf("k%d", i), Params: p, Cost: 1 + int64(i%10)})
	}
	tests := []struct {
		now       int64
		wantSwept int
		wantLen   int
	}{
		{now: t0, wantSwept: 0, wantLen: 1000},
		{now: t0 + second/10 - 1, wantSwept: 0, wantLen: 1000},
		{now: t0 + second/10, wantSwept: 100, wantLen: 900}, // cost 1 drains in 0.1 s
		{now: t0 + second/2, wantSwept: 400, wantLen: 500},
		{now: t0 + second, wantSwept: 500, wantLen: 0},
	}
	for _, tt := range tests {
		if got := s.Sweep(tt.now); got != tt.wantSwept {
			t.Fatalf("Sweep(t0+%d): got %d, want %d", tt.now-t0, got, tt.wantSwept)
		}
		if got := s.Len(); got != tt.wantLen {
			t.Fatalf("after Sweep(t0+%d): Len %d, want %d", tt.now-t0, got, tt.wantLen)
		}
	}
}

// TestIncrementalExpiry: inserting new keys removes expired ones, with no
// Sweep and no janitor.
func TestIncrementalExpiry(t *testing.T) {
	s := New(WithShards(1))
	defer s.Close()
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: second}
	for i := range 500 {
		apply(t, s, t0, store.Op{Key: fmt.Sprintf("old%d", i), Params: p, Cost: 1})
	}
	for i := range 500 {
		apply(t, s, t0+hour, store.Op{Key: fmt.Sprintf("new%d", i), Params: p, Cost: 1})
	}
	if got := s.Len(); got != 500 {
		t.Fatalf("Len %d, want 500: inserts did not remove the expired keys", got)
	}
}

// TestFloodOfNewKeysStaysBounded: keys that each live a second, a new one
// every millisecond for 100 s, with no janitor and no cap reached: the
// store holds about the keys of the last few seconds, not all of them.
func TestFloodOfNewKeysStaysBounded(t *testing.T) {
	s := New(WithShards(4))
	defer s.Close()
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 10, Period: second}
	most := 0
	for i := range 100_000 {
		now := t0 + int64(i)*1000
		apply(t, s, now, store.Op{Key: fmt.Sprintf("k%d", i), Params: p, Cost: 1})
		most = max(most, s.Len())
	}
	// About 1,000 keys are live at once and 1,000 more within their
	// second of grace; the index sweeps at 3/4 full and grows by doubling.
	if most > 8_000 {
		t.Fatalf("the store held up to %d keys, want at most 8,000 (about 2,000 live or in grace)", most)
	}
}

// TestExpiredKeyComingBackReusesItsEntry: a key whose state expired, back
// within its second of grace while new keys arrive, finds its entry: it is
// never removed and inserted again, and nothing allocates.
func TestExpiredKeyComingBackReusesItsEntry(t *testing.T) {
	s := New(WithShards(1))
	defer s.Close()
	// A bucket of 10 per second refills 1 unit in 100 ms: expired then.
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: second}
	const n = 2000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
		apply(t, s, t0, store.Op{Key: keys[i], Params: p, Cost: 1})
	}
	ops := make([]store.Op, 1)
	res := make([]algorithms.Result, 1)
	now := t0
	round := func() {
		now += 200_000 // every key expired 100 ms ago
		for i := range keys {
			ops[0] = store.Op{Key: keys[i], Params: p, Cost: 1}
			if err := s.Apply(context.Background(), now, ops, res); err != nil {
				t.Fatal(err)
			}
			// The state was fresh: a full bucket, charged one.
			if !res[0].Allowed || res[0].Remaining != 9 {
				t.Fatalf("key %d: %+v, want allowed with 9 remaining", i, res[0])
			}
		}
	}
	if allocs := testing.AllocsPerRun(5, round); allocs != 0 {
		t.Errorf("%v allocations per round of %d returning keys, want 0", allocs, n)
	}
	if got := s.Len(); got != n {
		t.Errorf("Len %d, want %d", got, n)
	}
}

func TestJanitor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(WithJanitor(time.Second))
		p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: second}
		for i := range 100 {
			apply(t, s, t0, store.Op{Key: fmt.Sprintf("k%d", i), Params: p, Cost: 1})
		}
		// The janitor sweeps at the latest now passed to Apply.
		apply(t, s, t0+hour, store.Op{Key: "late", Params: p, Cost: 1})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := s.Len(); got != 1 {
			t.Errorf("Len after the janitor ran: %d, want 1", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNoAllocs checks the hot paths: existing keys, single ops and batches.
func TestNoAllocs(t *testing.T) {
	s := New()
	defer s.Close()
	p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1e9, Period: second}
	key := []byte("rule:user=0000")
	ops := make([]store.Op, 4)
	for i := range ops {
		ops[i] = store.Op{Key: fmt.Sprintf("rule%d:user=42", i), Params: p, Cost: 1}
	}
	res := make([]algorithms.Result, 4)
	ctx := context.Background()
	one := []store.Op{{Key: string(key), Params: p, Cost: 1}}
	if err := s.Apply(ctx, t0, one, res); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, t0, ops, res); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"1 op, existing key", func() { _ = s.Apply(ctx, t0, one, res) }},
		{"4 ops, existing keys", func() { _ = s.Apply(ctx, t0, ops, res) }},
		{"4 ops, one denying", func() {
			ops[2].Cost = 2e9
			_ = s.Apply(ctx, t0, ops, res)
			ops[2].Cost = 1
		}},
		{"peek of a missing key", func() { _ = s.Apply(ctx, t0, []store.Op{{Key: "missing", Params: p}}, res) }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got != 0 {
			t.Errorf("%s: %v allocs per Apply, want 0", tt.name, got)
		}
	}
}

// TestBatchesAcrossShardsInAnyOrder runs batches whose keys lie in many
// shards, in opposite orders, from many goroutines: no deadlock, and the
// counts add up.
func TestBatchesAcrossShardsInAnyOrder(t *testing.T) {
	s := New(WithShards(8))
	defer s.Close()
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1 << 40, Period: hour}
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	const goroutines, rounds = 8, 200
	var wg sync.WaitGroup
	var charged atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			res := make([]algorithms.Result, 12)
			ops := make([]store.Op, 0, 12)
			for range rounds {
				ops = ops[:0]
				for _, i := range rng.Perm(len(keys))[:2+rng.IntN(10)] {
					ops = append(ops, store.Op{Key: keys[i], Params: p, Cost: 1})
				}
				if err := s.Apply(context.Background(), t0, ops, res); err != nil {
					t.Error(err)
					return
				}
				charged.Add(int64(len(ops)))
			}
		})
	}
	wg.Wait()
	var total int64
	for _, k := range keys {
		total += p.Limit - apply(t, s, t0, store.Op{Key: k, Params: p})[0].Remaining
	}
	if want := charged.Load(); total != want {
		t.Fatalf("keys were charged %d units in all, want %d", total, want)
	}
}

// TestShardTable drives one shard's index through growth, shrinking and
// deletions against a map, checking every key stays findable.
func TestShardTable(t *testing.T) {
	var sh shard
	var keys atomic.Int64
	s := New(WithShards(1))
	sh.init(&keys)
	rng := rand.New(rand.NewPCG(7, 7))
	want := make(map[string]int64)
	check := func(step int) {
		t.Helper()
		if sh.n != len(want) || keys.Load() != int64(len(want)) {
			t.Fatalf("step %d: n %d, want %d", step, sh.n, len(want))
		}
		for k, v := range want {
			idx, _ := sh.find(s.hash(k))
			if idx < 0 || sh.entry(idx).state[0] != v {
				t.Fatalf("step %d: key %q: idx %d, want state %d", step, k, idx, v)
			}
		}
		used := 0
		for _, v := range sh.slots {
			if v != 0 {
				used++
			}
		}
		if used != sh.n {
			t.Fatalf("step %d: %d slots used for %d entries", step, used, sh.n)
		}
	}
	for step := range 20_000 {
		// Grow to about 3000 keys, then shrink to none.
		k := fmt.Sprintf("key%d", rng.IntN(4000))
		grow := step < 12_000
		idx, slot := sh.find(s.hash(k))
		switch {
		case idx >= 0 && (!grow || rng.IntN(3) == 0):
			sh.remove(idx, slot)
			sh.shrink()
			delete(want, k)
		case idx < 0 && grow:
			keys.Add(1)
			sh.insert(s.hash(k), algorithms.State{int64(step)}, 1)
			want[k] = int64(step)
		}
		if step%1000 == 0 {
			check(step)
		}
	}
	check(20_000)
	for k := range want {
		idx, slot := sh.find(s.hash(k))
		sh.remove(idx, slot)
		delete(want, k)
	}
	sh.shrink()
	check(20_001)
	if len(sh.slots) != minSlots || len(sh.pages) > 1 {
		t.Fatalf("empty shard holds %d slots and %d pages, want %d and at most 1", len(sh.slots), len(sh.pages), minSlots)
	}
}

func TestAfterClose(t *testing.T) {
	s := New(WithJanitor(time.Hour))
	apply(t, s, t0, store.Op{Key: "a", Params: perHour, Cost: 1})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != 0 {
		t.Errorf("Len after Close: %d, want 0", got)
	}
	if got := s.Sweep(t0 + hour); got != 0 {
		t.Errorf("Sweep after Close: %d, want 0", got)
	}
	res := make([]algorithms.Result, 2)
	ops := []store.Op{{Key: "a", Params: perHour, Cost: 1}, {Key: "b", Params: perHour, Cost: 1}}
	if err := s.Apply(context.Background(), t0, ops, res); !errors.Is(err, store.ErrClosed) {
		t.Errorf("batch after Close: %v, want store.ErrClosed", err)
	}
}

func TestShardCount(t *testing.T) {
	tests := []struct {
		opts []Option
		want int
	}{
		{opts: []Option{WithShards(3)}, want: 4},
		{opts: []Option{WithShards(0)}, want: 1},
		{opts: []Option{WithShards(1 << 20)}, want: MaxShards},
		{opts: []Option{WithMaxKeys(100)}, want: 1},
		{opts: []Option{WithMaxKeys(10_000)}, want: 32},
		{opts: []Option{WithMaxKeys(10_000), WithShards(64)}, want: 64},
	}
	for _, tt := range tests {
		s := New(tt.opts...)
		if got := len(s.shards); got != tt.want {
			t.Errorf("New(%d options): %d shards, want %d", len(tt.opts), got, tt.want)
		}
		s.Close()
	}
}

// checkInvariants verifies the count of keys and every shard's index.
func checkInvariants(t *testing.T, s *Store, step int) {
	t.Helper()
	total := 0
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		total += sh.n
		used := 0
		for _, v := range sh.slots {
			if v != 0 {
				used++
			}
		}
		if used != sh.n {
			t.Fatalf("step %d: shard %d: %d slots used for %d entries", step, i, used, sh.n)
		}
		for j := range sh.n {
			k := sh.entry(j).key
			if idx, _ := sh.find(k); idx != j {
				t.Fatalf("step %d: shard %d: entry %d (%x) found at %d", step, i, j, k, idx)
			}
		}
		sh.mu.Unlock()
	}
	if got := s.Len(); got != total || int64(total) > s.max {
		t.Fatalf("step %d: Len %d, entries %d, max %d", step, got, total, s.max)
	}
}

// TestRandomBatchesKeepInvariants runs random batches on a small, full
// store whose keys expire all the time, checking its bookkeeping.
func TestRandomBatchesKeepInvariants(t *testing.T) {
	s := New(WithShards(4), WithMaxKeys(100))
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	params := []algorithms.Params{
		{Kind: algorithms.FixedWindow, Limit: 3, Period: 500},
		{Kind: algorithms.TokenBucket, Limit: 2, Period: 20_000},
		{Kind: algorithms.GCRA, Limit: 5, Period: 10_000},
		{Kind: algorithms.Concurrency, Limit: 2, Period: 30_000},
	}
	now := t0
	res := make([]algorithms.Result, 12)
	full := 0
	for step := range 5000 {
		now += rng.Int64N(40)
		n := 1 + rng.IntN(12)
		ops := make([]store.Op, n)
		for i := range ops {
			k := rng.IntN(400)
			ops[i] = store.Op{Key: fmt.Sprintf("k%d", k), Params: params[k%len(params)], Cost: rng.Int64N(4) - 1, Shadow: rng.IntN(5) == 0}
		}
		if rng.IntN(50) == 0 {
			s.Sweep(now)
		}
		dropped := s.Dropped()
		if err := s.Apply(context.Background(), now, ops, res); err != nil {
			t.Fatal(err)
		}
		if s.Dropped() > dropped {
			full++
		}
		checkInvariants(t, s, step)
	}
	t.Logf("%d of 5000 batches found the store full", full)
}

// TestFreshStateIsDeleted: a key whose state is back to fresh (a refund of
// everything, a release of every slot) holds no entry.
func TestFreshStateIsDeleted(t *testing.T) {
	s := New()
	defer s.Close()
	tb := algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: hour}
	conc := algorithms.Params{Kind: algorithms.Concurrency, Limit: 10, Period: hour}
	tests := []struct {
		name    string
		batches [][]store.Op
		wantLen int
	}{
		{"charge", [][]store.Op{{{Key: "a", Params: tb, Cost: 3}}}, 1},
		{"refund all", [][]store.Op{{{Key: "a", Params: tb, Cost: -3}}}, 0},
		{"acquire two keys", [][]store.Op{{{Key: "b", Params: conc, Cost: 2}, {Key: "c", Params: conc, Cost: 1}}}, 2},
		{"release one in a batch", [][]store.Op{{{Key: "b", Params: conc, Cost: -2}, {Key: "c", Params: conc}}}, 1},
		{"acquire and release in one batch", [][]store.Op{{{Key: "d", Params: conc, Cost: 1}, {Key: "d", Params: conc, Cost: -1}}}, 1},
		{"peek a missing key", [][]store.Op{{{Key: "e", Params: tb}}}, 1},
	}
	for _, tt := range tests {
		for _, ops := range tt.batches {
			apply(t, s, t0, ops...)
		}
		if got := s.Len(); got != tt.wantLen {
			t.Fatalf("%s: Len %d, want %d", tt.name, got, tt.wantLen)
		}
	}
}
