package limiter

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/store"
)

func TestFailModes(t *testing.T) {
	rules := []Rule{
		{Name: "open", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, OnStoreError: FailAllow},
		{Name: "closed", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, OnStoreError: FailDeny},
		{Name: "default", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute},
	}
	cases := []struct {
		name        string
		enabled     []int
		defaultMode FailMode
		allowed     bool
	}{
		{"allow", []int{0}, FailDefault, true},
		{"deny", []int{1}, FailDefault, false},
		{"default is allow", []int{2}, FailDefault, true},
		{"default set to deny", []int{2}, FailDeny, false},
		{"one closed rule denies", []int{0, 1}, FailDefault, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rs []Rule
			for _, i := range c.enabled {
				rs = append(rs, rules[i])
			}
			l, s, _ := newTestLimiter(t, rs, WithFailMode(c.defaultMode), WithCircuitBreaker(0, 0))
			s.setFailing(errDown)
			d := l.Check(ctx, user("a"))
			if d.Allowed != c.allowed || !errors.Is(d.Err, errDown) {
				t.Fatalf("allowed=%v err=%v, want allowed=%v err=%v", d.Allowed, d.Err, c.allowed, errDown)
			}
			if !d.Allowed && !d.Limiting.StoreError {
				t.Fatalf("a fail-closed denial must be marked StoreError")
			}
			if d.Reservation != nil {
				t.Fatalf("nothing was charged, so nothing is reserved")
			}
		})
	}
}

func TestFailLocalEnforcesAShareInTheFallback(t *testing.T) {
	fallback := newRefStore()
	l, s, _ := newTestLimiter(t, []Rule{{
		Name: "shared", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, OnStoreError: FailLocal,
	}}, WithFallback(fallback, 4), WithCircuitBreaker(0, 0))
	s.setFailing(errDown)
	admitted := 0
	for i := 0; i < 10; i++ {
		if d := l.Check(ctx, user("a")); d.Allowed {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("admitted %d while failing locally, want ceil(10/4) = 3", admitted)
	}
	if fallback.calls.Load() != 10 {
		t.Fatalf("fallback calls = %d, want 10", fallback.calls.Load())
	}
	s.setFailing(nil)
	if d := l.Check(ctx, user("a")); !d.Allowed || d.Err != nil {
		t.Fatalf("the main store is back: allowed=%v err=%v", d.Allowed, d.Err)
	}
}

func TestCircuitBreakerOpensProbesAndCloses(t *testing.T) {
	l, s, clk := newTestLimiter(t, []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute}},
		WithCircuitBreaker(3, time.Second))
	s.setFailing(errDown)
	for i := 0; i < 3; i++ {
		l.Check(ctx, user("a"))
	}
	if !l.CircuitOpen() || s.calls.Load() != 3 {
		t.Fatalf("open=%v calls=%d after 3 failures, want open after 3 calls", l.CircuitOpen(), s.calls.Load())
	}
	for i := 0; i < 10; i++ {
		if d := l.Check(ctx, user("a")); !errors.Is(d.Err, ErrCircuitOpen) || !d.Allowed {
			t.Fatalf("open circuit: err=%v allowed=%v, want ErrCircuitOpen and fail open", d.Err, d.Allowed)
		}
	}
	if s.calls.Load() != 3 {
		t.Fatalf("the store was called %d times while the circuit was open", s.calls.Load()-3)
	}
	clk.Advance(time.Second)
	l.Check(ctx, user("a")) // the probe, which fails
	l.Check(ctx, user("a")) // no second probe in the same interval
	if s.calls.Load() != 4 || !l.CircuitOpen() {
		t.Fatalf("calls=%d open=%v, want exactly one failed probe and still open", s.calls.Load(), l.CircuitOpen())
	}
	s.setFailing(nil)
	clk.Advance(time.Second)
	if d := l.Check(ctx, user("a")); d.Err != nil || l.CircuitOpen() {
		t.Fatalf("probe after recovery: err=%v open=%v, want success and closed", d.Err, l.CircuitOpen())
	}
	if d := l.Check(ctx, user("a")); d.Err != nil || s.calls.Load() != 6 {
		t.Fatalf("closed circuit: err=%v calls=%d", d.Err, s.calls.Load())
	}
}

// TestPartialFailuresDoNotOpenTheBreaker: errors wrapping store.ErrPartial
// (one Cluster node down while the others answer) follow the fail mode for
// their decision but never open the circuit, however many come in a row;
// the same number of whole-store errors does.
func TestPartialFailuresDoNotOpenTheBreaker(t *testing.T) {
	l, s, _ := newTestLimiter(t, []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute, OnStoreError: FailDeny}},
		WithCircuitBreaker(3, time.Second))
	partial := fmt.Errorf("redis: node 10.0.0.7:6379: connection refused (%w)", store.ErrPartial)
	s.setFailing(partial)
	for i := range 10 {
		d := l.Check(ctx, user("a"))
		if d.Allowed || !errors.Is(d.Err, store.ErrPartial) || !d.Limiting.StoreError {
			t.Fatalf("check %d: allowed=%v err=%v, want the fail-closed denial of a store error", i, d.Allowed, d.Err)
		}
	}
	if l.CircuitOpen() || s.calls.Load() != 10 {
		t.Fatalf("open=%v calls=%d after 10 partial failures, want closed and every check sent", l.CircuitOpen(), s.calls.Load())
	}
	// Two whole-store failures after them: the partial ones did not count
	// toward the threshold of 3.
	s.setFailing(errDown)
	l.Check(ctx, user("a"))
	l.Check(ctx, user("a"))
	if l.CircuitOpen() {
		t.Fatal("open after 2 whole-store failures: the partial failures were counted")
	}
	l.Check(ctx, user("a"))
	if !l.CircuitOpen() {
		t.Fatal("closed after 3 whole-store failures in a row")
	}
}

// slowStore blocks until its context ends, like a Redis that stopped
// answering.
type slowStore struct{ refStore }

func (s *slowStore) InProcess() bool { return false }

func (s *slowStore) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestStoreTimeoutBoundsASlowStore(t *testing.T) {
	s := &slowStore{}
	l, err := New(s, []Rule{{Name: "r", Limit: 1, Period: time.Second, OnStoreError: FailDeny}}, WithStoreTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	d := l.Check(ctx, user("a"))
	if d.Allowed || !errors.Is(d.Err, context.DeadlineExceeded) {
		t.Fatalf("allowed=%v err=%v, want a fail-closed denial after the deadline", d.Allowed, d.Err)
	}
}

func TestSettleOnFailingStoreReportsTheError(t *testing.T) {
	l, s, _ := newTestLimiter(t, []Rule{{Name: "tpm", Limit: 100, Period: time.Minute, Unit: Tokens}}, WithCircuitBreaker(0, 0))
	d := l.Check(ctx, &Request{Estimate: Usage{InputTokens: 10}})
	s.setFailing(errDown)
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 20}); !errors.Is(err, errDown) {
		t.Fatalf("Settle = %v, want the store's error", err)
	}
}

// TestFallbackSettlementUsesTheShare: a settlement of a check decided on
// the fallback store (FailLocal) charges the fallback counter with the
// parameters it was checked with, the instance's share, not the rule's
// whole limit (with which a token bucket would refill twice as fast).
func TestFallbackSettlementUsesTheShare(t *testing.T) {
	fallback := newRefStore()
	l, s, clk := newTestLimiter(t, []Rule{{Name: "tpm", Algorithm: algorithms.TokenBucket, Unit: Tokens,
		Limit: 10, Period: time.Minute, By: byUser(), OnStoreError: FailLocal}},
		WithFallback(fallback, 2), WithCircuitBreaker(0, 0))
	s.setFailing(errDown)
	req := &Request{Facts: dimensions.Facts{User: "a"}, Estimate: Usage{InputTokens: 5}}
	d := l.Check(ctx, req) // the share of 5 tokens, all reserved
	if !d.Allowed || d.Reservation == nil {
		t.Fatalf("first check on the fallback: allowed=%v reservation=%v", d.Allowed, d.Reservation)
	}
	// 12 s refill 1 token of the share (5 per minute), 2 of the whole limit.
	clk.Advance(12 * time.Second)
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 6}); err != nil {
		t.Fatal(err)
	}
	// The share refilled 1 and the settlement took 1 more: still empty.
	if d := l.Check(ctx, &Request{Facts: dimensions.Facts{User: "a"}, Estimate: Usage{InputTokens: 1}}); d.Allowed {
		t.Fatalf("a token was left after the settlement: the fallback counter was settled with the whole limit (remaining %d)", d.Limiting.Remaining)
	}
}

// TestFailClosedRuleChargesNoFallbackCounter: when the store fails and one
// rule fails closed while another fails over to the fallback, the decision
// is denied and, all or nothing, the fallback counter is not charged.
func TestFailClosedRuleChargesNoFallbackCounter(t *testing.T) {
	fallback := newRefStore()
	l, s, _ := newTestLimiter(t, []Rule{
		{Name: "closed", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, OnStoreError: FailDeny},
		{Name: "local", Algorithm: algorithms.FixedWindow, Limit: 4, Period: time.Minute, By: byUser(), OnStoreError: FailLocal},
	}, WithFallback(fallback, 2), WithCircuitBreaker(0, 0))
	s.setFailing(errDown)
	for i := range 5 {
		if d := l.Check(ctx, user("a")); d.Allowed {
			t.Fatalf("check %d admitted although a rule fails closed", i)
		}
	}
	// The local rule's share (2) is untouched: with only it failing over,
	// both units are there.
	l2, s2, _ := newTestLimiter(t, []Rule{{Name: "local", Algorithm: algorithms.FixedWindow, Limit: 4, Period: time.Minute, By: byUser(), OnStoreError: FailLocal}},
		WithFallback(fallback, 2), WithCircuitBreaker(0, 0))
	s2.setFailing(errDown)
	for i := range 2 {
		if d := l2.Check(ctx, user("a")); !d.Allowed {
			t.Fatalf("check %d on the fallback share denied: the denied decisions charged it (%+v)", i, d.Limiting)
		}
	}
}
