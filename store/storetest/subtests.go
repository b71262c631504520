package storetest

import (
	"context"
	"errors"
	"fmt"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// params returns the parameters most subtests use for kind k: a limit of
// 5 per 10 s, or with a burst, a capacity of 7 refilling 4 per 10 s.
func params(k algorithms.Kind, burst bool) algorithms.Params {
	p := algorithms.Params{Kind: k, Limit: 5, Period: 10 * second}
	if burst {
		p.Limit, p.Burst = 4, 7
	}
	return p
}

// variants returns the parameter sets a subtest checks for kind k.
func variants(k algorithms.Kind) []algorithms.Params {
	if k == algorithms.TokenBucket || k == algorithms.GCRA {
		return []algorithms.Params{params(k, false), params(k, true)}
	}
	return []algorithms.Params{params(k, false)}
}

func variantName(p algorithms.Params) string {
	return fmt.Sprintf("L=%d,B=%d", p.Limit, p.Burst)
}

func testSequential(h *harness, k algorithms.Kind) {
	t := h.t
	for _, p := range variants(k) {
		key := h.key("seq:" + variantName(p))
		capacity := p.Capacity()
		// At one instant, exactly Capacity units of cost 1 pass, and
		// Remaining counts down.
		var admitted int64
		for i := int64(0); i < capacity+3; i++ {
			r := h.one(key, p, 1)
			if r.Allowed {
				admitted++
				if want := capacity - admitted; r.Remaining != want {
					t.Fatalf("%s: op %d: Remaining = %d, want %d", variantName(p), i, r.Remaining, want)
				}
				continue
			}
			if r.Reason != algorithms.ReasonLimited || r.Remaining != 0 {
				t.Fatalf("%s: op %d: denied with %+v, want ReasonLimited and Remaining 0", variantName(p), i, r)
			}
			if k != algorithms.Concurrency && r.RetryAfter <= 0 {
				t.Fatalf("%s: op %d: denied with RetryAfter %d, want > 0", variantName(p), i, r.RetryAfter)
			}
		}
		if admitted != capacity {
			t.Fatalf("%s: admitted %d of %d at one instant, want exactly %d", variantName(p), admitted, capacity+3, capacity)
		}
		// As time passes, every answer matches algorithms.Apply.
		for i := 0; i < 40; i++ {
			h.advance(p.Period / 8)
			h.one(key, p, 1)
			h.peek(key, p)
			if i%5 == 4 {
				h.one(key, p, 2)
			}
		}
		// A denial's RetryAfter is honest: after it, the cost passes.
		for i := int64(0); h.one(key, p, 1).Allowed; i++ {
			if i > capacity {
				t.Fatalf("%s: %d units allowed at one instant, capacity %d", variantName(p), i, capacity)
			}
		}
		if k != algorithms.Concurrency {
			r := h.one(key, p, 1)
			h.advance(r.RetryAfter - 1)
			if h.one(key, p, 1).Allowed {
				t.Fatalf("%s: allowed 1 µs before RetryAfter %d", variantName(p), r.RetryAfter)
			}
			h.advance(1)
			if !h.one(key, p, 1).Allowed {
				t.Fatalf("%s: denied at RetryAfter %d", variantName(p), r.RetryAfter)
			}
		}
	}
}

func testConcurrent(h *harness, k algorithms.Kind) {
	t := h.t
	g, n := h.cfg.goroutines, h.cfg.perG
	p := algorithms.Params{Kind: k, Limit: int64(g*n) / 2, Period: hour}
	key := h.key("hot")
	admitted := make([]int64, g)
	errs := make(chan error, g)
	done := make(chan struct{})
	for i := range g {
		go func() {
			defer func() { done <- struct{}{} }()
			ops := []store.Op{{Key: key, Params: p, Cost: 1}}
			res := make([]algorithms.Result, 1)
			for range n {
				if err := h.s.Apply(context.Background(), h.now, ops, res); err != nil {
					errs <- err
					return
				}
				if res[0].Allowed {
					admitted[i]++
				}
			}
		}()
	}
	for range g {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Fatalf("Apply: %v", err)
	}
	var total int64
	for _, a := range admitted {
		total += a
	}
	if total != p.Limit {
		t.Fatalf("%d goroutines x %d ops of cost 1, limit %d: admitted %d, want exactly %d", g, n, p.Limit, total, p.Limit)
	}
	// Bring the model to the same state, then check the store agrees.
	h.model.states[key], _ = algorithms.Apply(p, algorithms.State{}, h.now, p.Limit, algorithms.Force)
	if r := h.peek(key, p); r.Allowed || r.Remaining != 0 {
		t.Fatalf("peek after the limit was reached: %+v, want denied with Remaining 0", r)
	}
}

// testConcurrentBatches runs batches of three ops (two shared keys and one
// key per goroutine) from many goroutines. The tighter shared key admits
// exactly its limit of batches, and the other two keys are charged exactly
// once per admitted batch.
func testConcurrentBatches(h *harness, k algorithms.Kind) {
	t := h.t
	g, n := h.cfg.goroutines, h.cfg.perG
	pa := algorithms.Params{Kind: k, Limit: int64(g * n), Period: hour}
	pb := algorithms.Params{Kind: k, Limit: int64(g*n) / 3, Period: hour}
	po := algorithms.Params{Kind: k, Limit: int64(n), Period: hour}
	a, b := h.key("a"), h.key("b")
	admitted := make([]int64, g)
	errs := make(chan error, g)
	done := make(chan struct{})
	for i := range g {
		go func() {
			defer func() { done <- struct{}{} }()
			ops := []store.Op{
				{Key: a, Params: pa, Cost: 1},
				{Key: h.key(fmt.Sprintf("own%d", i)), Params: po, Cost: 1},
				{Key: b, Params: pb, Cost: 1},
			}
			res := make([]algorithms.Result, len(ops))
			for range n {
				if err := h.s.Apply(context.Background(), h.now, ops, res); err != nil {
					errs <- err
					return
				}
				if store.Admitted(ops, res) {
					admitted[i]++
				}
			}
		}()
	}
	for range g {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Fatalf("Apply: %v", err)
	}
	var total int64
	for i, a := range admitted {
		total += a
		own := h.key(fmt.Sprintf("own%d", i))
		if a > 0 {
			h.model.states[own], _ = algorithms.Apply(po, algorithms.State{}, h.now, a, algorithms.Force)
		}
		if r := h.peek(own, po); r.Remaining != po.Limit-a {
			t.Fatalf("goroutine %d: %d batches admitted, its own key has Remaining %d, want %d", i, a, r.Remaining, po.Limit-a)
		}
	}
	if total != pb.Limit {
		t.Fatalf("admitted %d batches, want exactly %d (the tighter shared limit)", total, pb.Limit)
	}
	h.model.states[a], _ = algorithms.Apply(pa, algorithms.State{}, h.now, total, algorithms.Force)
	h.model.states[b], _ = algorithms.Apply(pb, algorithms.State{}, h.now, total, algorithms.Force)
	if r := h.peek(a, pa); r.Remaining != pa.Limit-total {
		t.Fatalf("shared key a: Remaining %d, want %d: a denied batch charged it", r.Remaining, pa.Limit-total)
	}
	if r := h.peek(b, pb); r.Allowed || r.Remaining != 0 {
		t.Fatalf("shared key b: %+v, want denied with Remaining 0", r)
	}
}

func testAllOrNothing(h *harness, k algorithms.Kind) {
	t := h.t
	p := params(k, false)
	a, b, c, d := h.key("a"), h.key("b"), h.key("c"), h.key("d")
	for range p.Limit {
		h.one(b, p, 1)
	}
	op := func(key string, cost int64, shadow bool) store.Op {
		return store.Op{Key: key, Params: p, Cost: cost, Shadow: shadow}
	}

	// One denying op denies the batch; the op that fit says so, with the
	// Remaining it would have had, and is not charged.
	r := h.apply(op(a, 1, false), op(b, 1, false))
	if !r[0].Allowed || r[0].Remaining != p.Limit-1 || r[1].Allowed {
		t.Fatalf("[a:1, exhausted b:1]: got %+v, want a allowed with Remaining %d and b denied", r, p.Limit-1)
	}
	if got := h.peek(a, p).Remaining; got != p.Limit {
		t.Fatalf("after a denied batch, a has Remaining %d, want %d (nothing charged)", got, p.Limit)
	}

	// The denying op first: the later ops are still evaluated, not charged.
	r = h.apply(op(b, 1, false), op(a, 2, false), op(c, 1, false))
	if r[0].Allowed || !r[1].Allowed || !r[2].Allowed {
		t.Fatalf("[exhausted b:1, a:2, c:1]: got %+v, want b denied, a and c allowed", r)
	}
	if got := h.peek(c, p).Remaining; got != p.Limit {
		t.Fatalf("after a denied batch, c has Remaining %d, want %d", got, p.Limit)
	}

	// A denied shadow op does not deny the batch and is not charged.
	r = h.apply(op(a, 1, false), op(b, 1, true))
	if !store.Admitted([]store.Op{op(a, 1, false), op(b, 1, true)}, r) || r[1].Allowed {
		t.Fatalf("[a:1, shadow exhausted b:1]: got %+v, want admitted with b denied", r)
	}
	if got := h.peek(a, p).Remaining; got != p.Limit-1 {
		t.Fatalf("after an admitted batch, a has Remaining %d, want %d", got, p.Limit-1)
	}

	// An allowed shadow op is charged when the batch commits...
	h.apply(op(c, 2, true), op(a, 1, false))
	if got := h.peek(c, p).Remaining; got != p.Limit-2 {
		t.Fatalf("allowed shadow op in an admitted batch: c has Remaining %d, want %d", got, p.Limit-2)
	}
	// ...and not when it does not.
	h.apply(op(c, 1, true), op(b, 1, false))
	if got := h.peek(c, p).Remaining; got != p.Limit-2 {
		t.Fatalf("allowed shadow op in a denied batch: c has Remaining %d, want %d", got, p.Limit-2)
	}

	// Ops on the same key see each other.
	r = h.apply(op(d, 3, false), op(d, 3, false))
	if !r[0].Allowed || r[1].Allowed {
		t.Fatalf("[d:3, d:3] with limit %d: got %+v, want the first allowed and the second denied", p.Limit, r)
	}
	if got := h.peek(d, p).Remaining; got != p.Limit {
		t.Fatalf("after [d:3, d:3] was denied, d has Remaining %d, want %d", got, p.Limit)
	}
	r = h.apply(op(d, 2, false), op(a, 1, false), op(d, 2, false))
	if !r[0].Allowed || !r[2].Allowed || r[2].Remaining != p.Limit-4 {
		t.Fatalf("[d:2, a:1, d:2]: got %+v, want all allowed and d's last Remaining %d", r, p.Limit-4)
	}
	if got := h.peek(d, p).Remaining; got != p.Limit-4 {
		t.Fatalf("after [d:2, a:1, d:2], d has Remaining %d, want %d", got, p.Limit-4)
	}
	// A refund and a charge on one key in one batch.
	r = h.apply(op(d, -4, false), op(d, p.Limit, false))
	if !r[1].Allowed || r[1].Remaining != 0 {
		t.Fatalf("[d:-4, d:%d]: got %+v, want the charge allowed after the refund", p.Limit, r)
	}
}

func testPeek(h *harness, k algorithms.Kind) {
	t := h.t
	for _, p := range variants(k) {
		key := h.key("peek:" + variantName(p))
		capacity := p.Capacity()
		for i := range 3 {
			if r := h.peek(key, p); !r.Allowed || r.Remaining != capacity {
				t.Fatalf("%s: peek %d on a fresh key: %+v, want allowed with Remaining %d", variantName(p), i, r, capacity)
			}
		}
		h.one(key, p, 2)
		for i := range 3 {
			if r := h.peek(key, p); !r.Allowed || r.Remaining != capacity-2 {
				t.Fatalf("%s: peek %d after 2 units: %+v, want allowed with Remaining %d", variantName(p), i, r, capacity-2)
			}
		}
		h.one(key, p, capacity-2)
		for i := range 3 {
			if r := h.peek(key, p); r.Allowed || r.Reason != algorithms.ReasonLimited {
				t.Fatalf("%s: peek %d on an exhausted key: %+v, want denied (ReasonLimited)", variantName(p), i, r)
			}
		}
		// A peek in force mode is still a peek.
		h.apply(store.Op{Key: key, Params: p, Mode: algorithms.Force})
		h.one(key, p, -1)
		if r := h.one(key, p, 1); !r.Allowed || r.Remaining != 0 {
			t.Fatalf("%s: after peeks and a refund of 1, a charge of 1: %+v, want allowed with Remaining 0", variantName(p), r)
		}
	}
}

func testRefund(h *harness, k algorithms.Kind) {
	t := h.t
	for _, p := range variants(k) {
		key := h.key("refund:" + variantName(p))
		capacity := p.Capacity()
		// A refund on a fresh key leaves it fresh.
		if r := h.one(key, p, -3); !r.Allowed || r.Remaining != capacity {
			t.Fatalf("%s: refund on a fresh key: %+v, want allowed with Remaining %d", variantName(p), r, capacity)
		}
		h.one(key, p, 3)
		if r := h.one(key, p, -1); r.Remaining != capacity-2 {
			t.Fatalf("%s: 3 units then a refund of 1: Remaining %d, want %d", variantName(p), r.Remaining, capacity-2)
		}
		if r := h.one(key, p, -100); r.Remaining != capacity {
			t.Fatalf("%s: refund of 100 after 2 units: Remaining %d, want %d (never below empty)", variantName(p), r.Remaining, capacity)
		}
		if r := h.one(key, p, capacity); !r.Allowed {
			t.Fatalf("%s: a full charge after a large refund: %+v, want allowed", variantName(p), r)
		}
		if r := h.one(key, p, 1); r.Allowed {
			t.Fatalf("%s: a refund raised the capacity: %+v, want denied", variantName(p), r)
		}
		h.one(key, p, -algorithms.MaxLimit)
		h.one(key, p, -1<<63)
	}
}

func testForce(h *harness, k algorithms.Kind) {
	t := h.t
	for _, p := range variants(k) {
		key := h.key("force:" + variantName(p))
		capacity := p.Capacity()
		force := func(cost int64) algorithms.Result {
			return h.apply(store.Op{Key: key, Params: p, Cost: cost, Mode: algorithms.Force})[0]
		}
		h.one(key, p, capacity-1)
		if r := force(5); !r.Allowed || r.Remaining != 0 {
			t.Fatalf("%s: force 5 with 1 unit left: %+v, want allowed with Remaining 0", variantName(p), r)
		}
		if r := h.one(key, p, 1); r.Allowed {
			t.Fatalf("%s: a charge after a force past the limit: %+v, want denied", variantName(p), r)
		}
		if r := h.peek(key, p); r.Allowed {
			t.Fatalf("%s: a peek after a force past the limit: %+v, want denied", variantName(p), r)
		}
		// Refunding what was forced past the limit is not enough room.
		h.one(key, p, -4)
		if r := h.one(key, p, 1); r.Allowed {
			t.Fatalf("%s: over by 4, refunded 4: a charge of 1: %+v, want denied", variantName(p), r)
		}
		// Force more than the capacity on a fresh key, then saturate.
		other := key + ":big"
		if r := h.apply(store.Op{Key: other, Params: p, Cost: capacity * 3, Mode: algorithms.Force})[0]; !r.Allowed {
			t.Fatalf("%s: force %d on a fresh key: %+v, want allowed", variantName(p), capacity*3, r)
		}
		h.apply(store.Op{Key: other, Params: p, Cost: 1 << 62, Mode: algorithms.Force})
		h.apply(store.Op{Key: other, Params: p, Cost: algorithms.MaxLimit, Mode: algorithms.Force})
		h.peek(other, p)
		h.advance(p.Period)
		h.peek(other, p)
	}
}

func testExceedsCapacity(h *harness, k algorithms.Kind) {
	t := h.t
	for _, p := range variants(k) {
		key := h.key("big:" + variantName(p))
		h.one(key, p, 1)
		r := h.one(key, p, p.Capacity()+1)
		if r.Allowed || r.Reason != algorithms.ReasonExceedsCapacity || r.RetryAfter != 0 {
			t.Fatalf("%s: cost %d over capacity %d: %+v, want denied (ReasonExceedsCapacity) with RetryAfter 0", variantName(p), p.Capacity()+1, p.Capacity(), r)
		}
		if got := h.peek(key, p).Remaining; got != p.Capacity()-1 {
			t.Fatalf("%s: the denied cost was charged: Remaining %d, want %d", variantName(p), got, p.Capacity()-1)
		}
		zero := p
		zero.Limit, zero.Burst = 0, 0
		if r := h.one(h.key("zero"), zero, 1); r.Allowed || r.Reason != algorithms.ReasonExceedsCapacity {
			t.Fatalf("limit 0: %+v, want denied (ReasonExceedsCapacity)", r)
		}
	}
}

func testExpiry(h *harness, k algorithms.Kind) {
	t := h.t
	for _, p := range variants(k) {
		key := h.key("expiry:" + variantName(p))
		capacity := p.Capacity()
		r := h.one(key, p, 2)
		if r.ResetAfter <= 0 {
			t.Fatalf("%s: 2 units: ResetAfter %d, want > 0", variantName(p), r.ResetAfter)
		}
		h.advance(r.ResetAfter - 1)
		if got := h.peek(key, p); got.Remaining == capacity {
			t.Fatalf("%s: 1 µs before ResetAfter %d, the key is fresh: %+v", variantName(p), r.ResetAfter, got)
		}
		h.advance(1)
		if got := h.peek(key, p); !got.Allowed || got.Remaining != capacity || got.ResetAfter != 0 {
			t.Fatalf("%s: at ResetAfter, peek: %+v, want a fresh key (Remaining %d, ResetAfter 0)", variantName(p), got, capacity)
		}
		// An exhausted key is fresh again after its ResetAfter.
		for range capacity {
			r = h.one(key, p, 1)
		}
		h.advance(r.ResetAfter)
		for i := range capacity {
			if got := h.one(key, p, 1); !got.Allowed {
				t.Fatalf("%s: after ResetAfter of an exhausted key, unit %d denied: %+v", variantName(p), i, got)
			}
		}
		// Long idle: a year later, still fresh, and the clock moving by
		// the largest period changes nothing.
		h.advance(algorithms.MaxPeriod)
		if got := h.peek(key, p); got.Remaining != capacity {
			t.Fatalf("%s: a year later: %+v, want Remaining %d", variantName(p), got, capacity)
		}
	}
}

func testReset(h *harness, k algorithms.Kind) {
	t := h.t
	p := params(k, false)
	a, b := h.key("a"), h.key("b")
	h.one(a, p, p.Limit)
	h.one(b, p, p.Limit)
	h.reset(a, h.key("never-used"))
	if r := h.one(a, p, 1); !r.Allowed || r.Remaining != p.Limit-1 {
		t.Fatalf("after Reset: %+v, want allowed with Remaining %d", r, p.Limit-1)
	}
	if r := h.one(b, p, 1); r.Allowed {
		t.Fatalf("Reset of a also reset b: %+v", r)
	}
	h.reset()
	h.reset(b, b)
	if r := h.peek(b, p); r.Remaining != p.Limit {
		t.Fatalf("after Reset(b, b): %+v, want Remaining %d", r, p.Limit)
	}
}

func testInvalid(h *harness, k algorithms.Kind) {
	t := h.t
	p := params(k, false)
	valid := h.key("valid")
	h.one(valid, p, 1)
	long := make([]byte, store.MaxKeyLen+1)
	for i := range long {
		long[i] = 'k'
	}
	with := func(f func(*algorithms.Params)) algorithms.Params {
		q := p
		f(&q)
		return q
	}
	tests := []struct {
		name    string
		op      store.Op
		results int // results for the 2-op batch; 2 unless set
	}{
		{name: "empty key", op: store.Op{Params: p, Cost: 1}},
		{name: "key too long", op: store.Op{Key: string(long), Params: p, Cost: 1}},
		{name: "kind 0", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Kind = 0 }), Cost: 1}},
		{name: "unknown kind", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Kind = 99 }), Cost: 1}},
		{name: "negative limit", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Limit = -1 }), Cost: 1}},
		{name: "limit over MaxLimit", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Limit = algorithms.MaxLimit + 1 }), Cost: 1}},
		{name: "period 0", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Period = 0 }), Cost: 1}},
		{name: "period over MaxPeriod", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Period = algorithms.MaxPeriod + 1 }), Cost: 1}},
		{name: "negative burst", op: store.Op{Key: h.key("x"), Params: with(func(q *algorithms.Params) { q.Burst = -1 }), Cost: 1}},
		{name: "too few results", op: store.Op{Key: h.key("x"), Params: p, Cost: 1}, results: 1},
	}
	for _, tt := range tests {
		ops := []store.Op{{Key: valid, Params: p, Cost: 1}, tt.op}
		n := 2
		if tt.results != 0 {
			n = tt.results
		}
		err := h.s.Apply(context.Background(), h.now, ops, make([]algorithms.Result, n))
		if !errors.Is(err, store.ErrInvalidOp) {
			t.Fatalf("%s: Apply returned %v, want an error wrapping store.ErrInvalidOp", tt.name, err)
		}
		if r := h.peek(valid, p); r.Remaining != p.Limit-1 {
			t.Fatalf("%s: the invalid batch charged its valid op: Remaining %d, want %d", tt.name, r.Remaining, p.Limit-1)
		}
		if r := h.peek(h.key("x"), p); r.Remaining != p.Limit {
			t.Fatalf("%s: the invalid batch charged its invalid op: Remaining %d, want %d", tt.name, r.Remaining, p.Limit)
		}
	}
	// The longest key is valid.
	h.one(string(long[:store.MaxKeyLen]), p, 1)
	// More results than ops is fine.
	res := make([]algorithms.Result, 3)
	if err := h.s.Apply(context.Background(), h.now, []store.Op{{Key: valid, Params: p}}, res); err != nil {
		t.Fatalf("Apply with more results than ops: %v", err)
	}
}

// testBorrowedKeys checks the store copies a key it keeps: the caller may
// build keys in a buffer it reuses.
func testBorrowedKeys(h *harness, k algorithms.Kind) {
	t := h.t
	p := params(k, false)
	buf := []byte(h.key("borrowed:aaaa"))
	key := borrowString(buf)
	h.one(key, p, p.Limit)
	// The same bytes, now spelling another key.
	copy(buf[len(buf)-4:], "bbbb")
	if r := h.one(key, p, 1); !r.Allowed || r.Remaining != p.Limit-1 {
		t.Fatalf("a new key in a reused buffer: %+v, want a fresh key (the store kept the caller's bytes)", r)
	}
	if r := h.peek(h.key("borrowed:aaaa"), p); r.Allowed {
		t.Fatalf("the first key, exhausted: %+v, want denied", r)
	}
	h.reset(key)
	copy(buf[len(buf)-4:], "cccc")
	h.one(key, p, 1)
}

func testEmptyBatch(h *harness) {
	if err := h.s.Apply(context.Background(), h.now, nil, nil); err != nil {
		h.t.Fatalf("Apply with no ops: %v", err)
	}
}

func testClose(h *harness) {
	t := h.t
	p := params(algorithms.FixedWindow, false)
	h.one(h.key("a"), p, 1)
	if err := h.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := h.s.Apply(context.Background(), h.now, []store.Op{{Key: h.key("a"), Params: p, Cost: 1}}, make([]algorithms.Result, 1))
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Apply after Close: %v, want an error wrapping store.ErrClosed", err)
	}
	if err := h.s.Reset(context.Background(), h.key("a")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Reset after Close: %v, want an error wrapping store.ErrClosed", err)
	}
	if err := h.s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v, want an error wrapping store.ErrClosed", err)
	}
}
