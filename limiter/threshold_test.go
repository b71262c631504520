package limiter

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

// events collects threshold events.
type events struct {
	mu   sync.Mutex
	list []ThresholdEvent
}

func (e *events) hook(_ context.Context, ev ThresholdEvent) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
}

func (e *events) thresholds() []float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]float64, len(e.list))
	for i, ev := range e.list {
		out[i] = ev.Threshold
	}
	return out
}

func TestThresholdsFireOncePerKeyAndWindow(t *testing.T) {
	var ev events
	l, s, clk := newTestLimiter(t, []Rule{{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, By: byUser()}},
		WithThresholdHook(ev.hook))
	var calls []int64
	for i := 1; i <= 12; i++ {
		before := s.calls.Load()
		l.Check(ctx, user("alice"))
		calls = append(calls, s.calls.Load()-before)
		switch got := ev.thresholds(); {
		case i < 8 && len(got) != 0, i >= 8 && i < 10 && len(got) != 1, i >= 10 && len(got) != 2:
			t.Fatalf("after request %d: fired %v", i, got)
		}
	}
	// The mark costs a store call only on the requests that crossed.
	for i, n := range calls {
		want := int64(1)
		if i+1 == 8 || i+1 == 10 {
			want = 2
		}
		if n != want {
			t.Errorf("request %d made %d store calls, want %d", i+1, n, want)
		}
	}
	e := ev.list[0]
	if e.Rule.Name != "rpm" || e.Threshold != 0.8 || e.Used != 8 || e.Limit != 10 || e.Request == nil || e.Request.User != "alice" ||
		!strings.HasPrefix(e.Key, "rpm/") || !strings.Contains(e.Key, "alice") || e.Reset <= 0 {
		t.Errorf("first event: %+v", e)
	}
	l.Check(ctx, user("bob")) // another key has its own thresholds
	clk.Advance(time.Minute)  // and a new window fires again
	for range 8 {
		l.Check(ctx, user("alice"))
	}
	if got := ev.thresholds(); len(got) != 3 || got[2] != 0.8 {
		t.Errorf("after the next window's 8th request: %v, want a third event at 0.8", got)
	}
}

func TestThresholdsAreOptionalPerRule(t *testing.T) {
	var ev events
	l, _, _ := newTestLimiter(t, []Rule{
		{Name: "none", Algorithm: algorithms.FixedWindow, Limit: 4, Period: time.Minute, Thresholds: []float64{}},
		{Name: "half", Algorithm: algorithms.FixedWindow, Limit: 4, Period: time.Minute, Thresholds: []float64{0.5}},
	}, WithThresholdHook(ev.hook))
	for range 4 {
		l.Check(ctx, user("a"))
	}
	if len(ev.list) != 1 || ev.list[0].Rule.Name != "half" || ev.list[0].Threshold != 0.5 || ev.list[0].Used != 2 {
		t.Errorf("events %+v, want one for half at 0.5 with 2 used", ev.list)
	}
}

func TestInvalidThresholds(t *testing.T) {
	for _, f := range []float64{0, -0.5, 1.01, math.NaN(), math.Inf(1)} {
		r := Rule{Name: "r", Limit: 1, Period: time.Second, Thresholds: []float64{0.5, f}}
		if err := r.Validate(); !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "threshold") {
			t.Errorf("threshold %v: %v, want an invalid threshold", f, err)
		}
	}
}

func TestThresholdCrossedBySettlement(t *testing.T) {
	var ev events
	l, _, _ := newTestLimiter(t, []Rule{{Name: "out", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: time.Hour, Unit: OutputTokens, By: byUser()}},
		WithThresholdHook(ev.hook))
	d := l.Check(ctx, user("a"))
	if len(ev.list) != 0 {
		t.Fatalf("a delayed rule's peek fired %v", ev.list)
	}
	if err := d.Reservation.Settle(ctx, Usage{OutputTokens: 850}); err != nil {
		t.Fatal(err)
	}
	d = l.Check(ctx, user("a"))
	if err := d.Reservation.Settle(ctx, Usage{OutputTokens: 400}); err != nil {
		t.Fatal(err)
	}
	if got := ev.thresholds(); len(got) != 2 || got[0] != 0.8 || got[1] != 1 {
		t.Fatalf("fired %v, want 0.8 then 1", got)
	}
	if e := ev.list[1]; e.Request != nil || e.Used != 1000 {
		// The counter is past the limit (1250): Remaining says 0, so Used is the limit.
		t.Errorf("settlement event: %+v, want no request and Used 1000", e)
	}
}

// markCounter counts the ops on threshold marks that reach a store.
type markCounter struct {
	store.Store
	marks atomic.Int64
}

func (m *markCounter) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	for i := range ops {
		if strings.Contains(ops[i].Key, "#t") {
			m.marks.Add(1)
		}
	}
	return m.Store.Apply(ctx, now, ops, results)
}

// TestThresholdFiresOnceAcrossInstancesUnderConcurrency runs two limiters
// (two gateway instances) on one shared store, with many goroutines whose
// reservations are refunded, so the counter goes up and down across 80%
// many times: the threshold must fire exactly once in the window.
func TestThresholdFiresOnceAcrossInstancesUnderConcurrency(t *testing.T) {
	shared := &markCounter{Store: memory.New()}
	clk := newFakeClock()
	rule := []Rule{{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute, Unit: Tokens, By: byUser(), Thresholds: []float64{0.8}}}
	var fired [2]atomic.Int64
	var instances [2]*Limiter
	for i := range instances {
		l, err := New(shared, rule, WithClock(clk.Now), WithThresholdHook(func(_ context.Context, e ThresholdEvent) {
			if e.Threshold == 0.8 {
				fired[i].Add(1)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		instances[i] = l
	}
	base := user("alice")
	base.Estimate.InputTokens = 75
	if d := instances[0].Check(ctx, base); !d.Allowed {
		t.Fatal("base charge denied")
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			l := instances[g%2]
			req := user("alice")
			req.Estimate.InputTokens = 10
			for range 100 {
				if d := l.Check(ctx, req); d.Allowed {
					_ = d.Reservation.Cancel(ctx)
				}
			}
		})
	}
	wg.Wait()
	if got := fired[0].Load() + fired[1].Load(); got != 1 {
		t.Errorf("80%% fired %d times (%d, %d), want once", got, fired[0].Load(), fired[1].Load())
	}
	if n := shared.marks.Load(); n < 1 || n > 2 {
		t.Errorf("%d marks reached the store, want one or two (at most one per instance and window)", n)
	}
}

// TestThresholdMarkIsSharedThroughTheStore: the second instance to cross
// finds the mark charged and stays silent; each instance asks the store at
// most once per window, however often its counter crosses.
func TestThresholdMarkIsSharedThroughTheStore(t *testing.T) {
	shared := &markCounter{Store: memory.New()}
	clk := newFakeClock()
	rule := []Rule{{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute, Unit: Tokens, By: byUser(), Thresholds: []float64{0.8}}}
	var a, b events
	la, err := New(shared, rule, WithClock(clk.Now), WithThresholdHook(a.hook))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := New(shared, rule, WithClock(clk.Now), WithThresholdHook(b.hook))
	if err != nil {
		t.Fatal(err)
	}
	req := user("alice")
	req.Estimate.InputTokens = 50
	la.Check(ctx, req) // 50
	req.Estimate.InputTokens = 40
	steps := []struct {
		l             *Limiter
		marks, aN, bN int64
	}{
		{la, 1, 1, 0}, // A crosses first: fires
		{lb, 2, 1, 0}, // B crosses: the store says the mark is taken
		{la, 2, 1, 0}, // A again: known taken, no store call
		{lb, 2, 1, 0}, // B again: likewise
	}
	for i, st := range steps {
		d := st.l.Check(ctx, req) // 50 -> 90
		if !d.Allowed {
			t.Fatalf("step %d: denied", i)
		}
		if err := d.Reservation.Cancel(ctx); err != nil { // back to 50
			t.Fatal(err)
		}
		if got := shared.marks.Load(); got != st.marks || int64(len(a.list)) != st.aN || int64(len(b.list)) != st.bN {
			t.Fatalf("step %d: marks=%d A=%d B=%d, want %d %d %d", i, got, len(a.list), len(b.list), st.marks, st.aN, st.bN)
		}
	}
	clk.Advance(time.Minute) // a new window: the counter and the mark start afresh
	req.Estimate.InputTokens = 85
	lb.Check(ctx, req)
	if len(b.list) != 1 || shared.marks.Load() != 3 {
		t.Errorf("next window: B fired %d, marks %d; want 1 and 3", len(b.list), shared.marks.Load())
	}
}

func TestMarkWindowIndex(t *testing.T) {
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 10, Offset: 3}
	for _, c := range []struct{ now, want int64 }{{3, 0}, {12, 0}, {13, 1}, {2, -1}, {-7, -1}, {-8, -2}} {
		if got := markWindow(p, c.now); got != c.want {
			t.Errorf("markWindow(%d) = %d, want %d", c.now, got, c.want)
		}
	}
}

func TestMarkWindows(t *testing.T) {
	day := int64(24 * time.Hour / time.Microsecond)
	for _, c := range []struct {
		name string
		p    algorithms.Params
		want algorithms.Params
	}{
		{"fixed", algorithms.Params{Kind: algorithms.FixedWindow, Limit: 5, Period: 60e6}, algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 60e6}},
		{"calendar", algorithms.Params{Kind: algorithms.FixedWindow, Limit: 5, Period: day, Offset: 3600e6}, algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: day, Offset: 3600e6}},
		{"sliding", algorithms.Params{Kind: algorithms.SlidingWindow, Limit: 5, Period: 60e6}, algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 60e6}},
		{"bucket", algorithms.Params{Kind: algorithms.TokenBucket, Limit: 10, Period: 1e6}, algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 1e6}},
		{"burst", algorithms.Params{Kind: algorithms.GCRA, Limit: 10, Period: 1e6, Burst: 50}, algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 5e6}},
		{"huge burst", algorithms.Params{Kind: algorithms.TokenBucket, Limit: 1, Period: algorithms.MaxPeriod, Burst: 1 << 40}, algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: algorithms.MaxPeriod}},
	} {
		if got := markParams(c.p); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if err := markParams(c.p).Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestDenialForLackOfRoomReachesFull: with WithThresholdOnDenial, a
// counter with less room than the next request is full for it; the first
// such denial fires 1.0, once, and later denials cost neither a store call
// nor an allocation. Without the option, denials fire nothing.
func TestDenialForLackOfRoomReachesFull(t *testing.T) {
	rules := []Rule{{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute, Unit: Tokens, By: byUser()}}
	var plain events
	lp, _, _ := newTestLimiter(t, rules, WithThresholdHook(plain.hook))
	req := user("a")
	req.Estimate.InputTokens = 85
	lp.Check(ctx, req)
	req.Estimate.InputTokens = 30
	lp.Check(ctx, req)
	if got := plain.thresholds(); len(got) != 1 || got[0] != 0.8 {
		t.Errorf("without WithThresholdOnDenial: fired %v, want only 0.8", got)
	}

	var ev events
	l, s, _ := newTestLimiter(t, rules, WithThresholdHook(ev.hook), WithThresholdOnDenial())
	req = user("a")
	req.Estimate.InputTokens = 85
	l.Check(ctx, req) // 85 of 100: crosses 0.8
	req.Estimate.InputTokens = 30
	if d := l.Check(ctx, req); d.Allowed {
		t.Fatal("30 more with 15 left was allowed")
	}
	if got := ev.thresholds(); len(got) != 2 || got[1] != 1 || ev.list[1].Used != 85 || ev.list[1].Request != req {
		t.Fatalf("events %+v, want 0.8 then 1.0 at 85 used", ev.list)
	}
	before := s.calls.Load()
	for range 5 {
		l.Check(ctx, req)
	}
	if n := s.calls.Load() - before; n != 5 || len(ev.list) != 2 {
		t.Errorf("5 more denials: %d store calls, %d events; want 5 and still 2", n, len(ev.list))
	}
	if !raceEnabled {
		if n := testing.AllocsPerRun(100, func() { l.Check(ctx, req) }); n != 0 {
			t.Errorf("a denial of a full counter allocates %v times, want 0", n)
		}
	}
	big := user("b")
	big.Estimate.InputTokens = 500 // more than the whole limit: not a sign of a full counter
	if d := l.Check(ctx, big); d.Allowed || d.Limiting.Reason != algorithms.ReasonExceedsCapacity || len(ev.list) != 2 {
		t.Errorf("a request over the capacity: allowed=%v reason=%v events=%d", d.Allowed, d.Limiting.Reason, len(ev.list))
	}
}

// TestResetForgetsThresholdMarks: after Limiter.Reset, a counter that
// crosses its thresholds again in the same window fires them again; other
// users' marks are untouched.
func TestResetForgetsThresholdMarks(t *testing.T) {
	var ev events
	l, _, _ := newTestLimiter(t, []Rule{{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, By: byUser()}},
		WithThresholdHook(ev.hook))
	for range 10 {
		l.Check(ctx, user("alice"))
		l.Check(ctx, user("bob"))
	}
	if got := len(ev.thresholds()); got != 4 {
		t.Fatalf("fired %d events before the reset, want 4 (0.8 and 1.0 for two users)", got)
	}
	if err := l.Reset(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if d := l.Check(ctx, user("alice")); !d.Allowed {
			t.Fatalf("alice denied after her reset: %+v", d.Limiting)
		}
	}
	if d := l.Check(ctx, user("bob")); d.Allowed {
		t.Fatal("bob admitted: the reset of alice reset bob")
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var alice []float64
	for _, e := range ev.list[4:] {
		if !strings.Contains(e.Key, "alice") {
			t.Errorf("after the reset, an event for %q", e.Key)
		}
		alice = append(alice, e.Threshold)
	}
	if len(alice) != 2 || alice[0] != 0.8 || alice[1] != 1 {
		t.Errorf("alice's thresholds after the reset: %v, want [0.8 1]", alice)
	}
}

// TestThresholdsOnTheFallback: while the main store fails and a rule fails
// over to the fallback store (FailLocal, 2 instances: a share of 5 of 10),
// crossing 80% and 100% of that share fires, once each, with the share as
// Limit; the marks live in the fallback store. Settlements on the fallback
// cross thresholds too.
func TestThresholdsOnTheFallback(t *testing.T) {
	var ev events
	fallback := newRefStore()
	l, s, _ := newTestLimiter(t, []Rule{
		{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, By: byUser(), OnStoreError: FailLocal},
		{Name: "tpm", Algorithm: algorithms.FixedWindow, Unit: Tokens, Limit: 100, Period: time.Minute, By: byUser(), OnStoreError: FailLocal},
	}, WithFallback(fallback, 2), WithCircuitBreaker(0, 0), WithThresholdHook(ev.hook))
	s.setFailing(errDown)
	req := &Request{Facts: dimensions.Facts{User: "alice"}, Estimate: Usage{InputTokens: 5}}
	for i := 1; i <= 6; i++ {
		d := l.Check(ctx, req)
		if want := i <= 5; d.Allowed != want {
			t.Fatalf("request %d on the fallback: allowed=%v, want %v", i, d.Allowed, want)
		}
		if d.Allowed {
			// Settle 10 tokens: 5 more than reserved.
			if err := d.Reservation.Settle(ctx, Usage{InputTokens: 10}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	got := map[string][]float64{}
	for _, e := range ev.list {
		got[e.Rule.Name] = append(got[e.Rule.Name], e.Threshold)
		if e.Rule.Name == "rpm" && e.Limit != 5 {
			t.Errorf("rpm event %v: Limit %d, want the instance's share 5", e.Threshold, e.Limit)
		}
	}
	// rpm: 4 of 5 crosses 0.8, 5 of 5 crosses 1.0. tpm: 5 requests of 10
	// tokens, share 50: 40 crosses 0.8 (at a settlement), 50 crosses 1.0.
	for name, want := range map[string][]float64{"rpm": {0.8, 1}, "tpm": {0.8, 1}} {
		if g := got[name]; len(g) != 2 || g[0] != want[0] || g[1] != want[1] {
			t.Errorf("%s fired %v, want %v", name, g, want)
		}
	}
	if fallback.calls.Load() == 0 {
		t.Error("the fallback store was never called")
	}
}
