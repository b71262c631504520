package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(t *testing.T, rules []Rule, opts ...Option) (*Limiter, *refStore, *fakeClock) {
	t.Helper()
	s := newRefStore()
	clk := newFakeClock()
	l, err := New(s, rules, append([]Option{WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, s, clk
}

var ctx = context.Background()

func user(u string) *Request { return &Request{Facts: dimensions.Facts{User: u}} }

func byUser() []dimensions.Dimension { return []dimensions.Dimension{dimensions.User} }

func TestCheckIsOneStoreCallForAllRules(t *testing.T) {
	rules := []Rule{
		{Name: "a", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute, By: byUser()},
		{Name: "b", Algorithm: algorithms.SlidingWindow, Limit: 10, Period: time.Minute, By: byUser()},
		{Name: "c", Algorithm: algorithms.TokenBucket, Limit: 10, Period: time.Minute},
		{Name: "d", Algorithm: algorithms.GCRA, Limit: 10, Period: time.Minute},
	}
	l, s, _ := newTestLimiter(t, rules)
	d := l.Check(ctx, user("alice"))
	if !d.Allowed || d.Len() != 4 {
		t.Fatalf("got allowed=%v with %d results, want allowed with 4", d.Allowed, d.Len())
	}
	if got := s.calls.Load(); got != 1 {
		t.Fatalf("store calls = %d, want 1", got)
	}
	for i := 0; i < d.Len(); i++ {
		if r := d.Result(i); r.Rule.Name != rules[i].Name || r.Remaining != 9 {
			t.Errorf("result %d = %s remaining %d, want %s remaining 9", i, r.Rule.Name, r.Remaining, rules[i].Name)
		}
	}
}

func TestCheckIsAllOrNothing(t *testing.T) {
	l, s, _ := newTestLimiter(t, []Rule{
		{Name: "roomy", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute, By: byUser()},
		{Name: "tight", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute, By: byUser()},
	})
	for i := 0; i < 2; i++ {
		if d := l.Check(ctx, user("bob")); !d.Allowed {
			t.Fatalf("request %d denied", i)
		}
	}
	for i := 0; i < 5; i++ {
		d := l.Check(ctx, user("bob"))
		if d.Allowed || d.Limiting.Rule.Name != "tight" {
			t.Fatalf("request %d: allowed=%v limiting=%v, want denied by tight", i, d.Allowed, d.Limiting.Rule)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > time.Minute {
			t.Fatalf("RetryAfter = %v, want in (0, 1m]", d.RetryAfter)
		}
	}
	// The roomy rule was charged only for the two admitted requests.
	d := l.Peek(ctx, user("bob"))
	if got := d.Result(0).Remaining; got != 98 {
		t.Fatalf("roomy remaining = %d, want 98: denied requests must charge nothing", got)
	}
	_ = s
}

func TestShadowRuleReportsButNeverDenies(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{
		{Name: "enforced", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute},
		{Name: "shadow", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, Mode: Shadow},
	})
	if d := l.Check(ctx, user("a")); !d.Allowed || d.ShadowDenied {
		t.Fatalf("first: allowed=%v shadowDenied=%v, want allowed, not shadow-denied", d.Allowed, d.ShadowDenied)
	}
	d := l.Check(ctx, user("a"))
	if !d.Allowed || !d.ShadowDenied {
		t.Fatalf("second: allowed=%v shadowDenied=%v, want allowed and shadow-denied", d.Allowed, d.ShadowDenied)
	}
	if d.Limiting.Rule.Name != "enforced" || d.Limiting.Remaining != 8 {
		t.Fatalf("limiting = %s remaining %d, want enforced remaining 8", d.Limiting.Rule.Name, d.Limiting.Remaining)
	}
}

func TestOffRuleMatchesNothing(t *testing.T) {
	l, s, _ := newTestLimiter(t, []Rule{{Name: "off", Limit: 0, Period: time.Second, Mode: Off}})
	if d := l.Check(ctx, user("a")); !d.Allowed || d.Len() != 0 {
		t.Fatalf("allowed=%v len=%d, want allowed with no results", d.Allowed, d.Len())
	}
	if s.calls.Load() != 0 {
		t.Fatalf("store called for a decision with no matching rule")
	}
}

func TestRuleWithMissingDimensionDoesNotMatch(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{{Name: "per-tenant", Limit: 0, Period: time.Second, By: []dimensions.Dimension{dimensions.Tenant}}})
	if d := l.Check(ctx, user("a")); !d.Allowed {
		t.Fatalf("a request without a tenant was limited by a per-tenant rule")
	}
	d := l.Check(ctx, &Request{Facts: dimensions.Facts{Tenant: "t"}})
	if d.Allowed || d.Limiting.Reason != algorithms.ReasonExceedsCapacity {
		t.Fatalf("allowed=%v reason=%v, want denied: a limit of 0 admits nothing", d.Allowed, d.Limiting.Reason)
	}
}

func TestTightestRuleIsTheLongestWait(t *testing.T) {
	l, _, clk := newTestLimiter(t, []Rule{
		{Name: "second", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Second},
		{Name: "hour", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Hour},
		{Name: "minute", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute},
	})
	clk.Advance(0)
	l.Check(ctx, user("a"))
	d := l.Check(ctx, user("a"))
	if d.Allowed || d.Limiting.Rule.Name != "hour" {
		t.Fatalf("limiting = %v, want hour", d.Limiting.Rule.Name)
	}
	if d.RetryAfter != time.Hour {
		t.Fatalf("RetryAfter = %v, want 1h (the clock sits on an hour boundary)", d.RetryAfter)
	}
}

func TestAllowedLimitingIsSmallestShareLeft(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{
		{Name: "big", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: time.Minute},
		{Name: "small", Algorithm: algorithms.FixedWindow, Limit: 4, Period: time.Minute},
	})
	d := l.Check(ctx, user("a"))
	if d.Limiting.Rule.Name != "small" || d.Limiting.Remaining != 3 || d.Limiting.Limit != 4 {
		t.Fatalf("limiting = %s %d/%d, want small 3/4", d.Limiting.Rule.Name, d.Limiting.Remaining, d.Limiting.Limit)
	}
}

func TestTokenReservationSettlesToActual(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{
		{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: time.Minute, Unit: Tokens},
		{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 100, Period: time.Minute},
	})
	req := &Request{Estimate: Usage{InputTokens: 100, OutputTokens: 300}}
	d := l.Check(ctx, req)
	if !d.Allowed || d.Reservation == nil {
		t.Fatalf("allowed=%v reservation=%v, want an allowed reservation", d.Allowed, d.Reservation)
	}
	if got, _ := d.Reservation.Reserved("tpm"); got != 400 {
		t.Fatalf("reserved %d, want 400 (input + max output)", got)
	}
	if _, ok := d.Reservation.Reserved("rpm"); ok {
		t.Fatalf("a requests rule has nothing to settle")
	}
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 100, OutputTokens: 50}); err != nil {
		t.Fatal(err)
	}
	if got := l.Peek(ctx, &Request{}).Result(0).Remaining; got != 850 {
		t.Fatalf("remaining after settle = %d, want 850 (1000 - 150 actual)", got)
	}
	// Settle is idempotent: a second call charges nothing.
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 900}); err != nil {
		t.Fatal(err)
	}
	if got := l.Peek(ctx, &Request{}).Result(0).Remaining; got != 850 {
		t.Fatalf("remaining after second settle = %d, want 850", got)
	}
	// Usage above the reservation is charged, past the limit if need be.
	d = l.Check(ctx, &Request{Estimate: Usage{InputTokens: 10}})
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 10, OutputTokens: 2000}); err != nil {
		t.Fatal(err)
	}
	if d := l.Check(ctx, &Request{Estimate: Usage{InputTokens: 1}}); d.Allowed {
		t.Fatalf("allowed after the quota was overrun by a settle")
	}
}

func TestCancelRefundsTheReservation(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{{Name: "tpm", Algorithm: algorithms.TokenBucket, Limit: 1000, Period: time.Minute, Unit: Tokens}})
	d := l.Check(ctx, &Request{Estimate: Usage{InputTokens: 600}})
	if err := d.Reservation.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 600}); err != nil {
		t.Fatal(err)
	}
	if got := l.Peek(ctx, &Request{}).Result(0).Remaining; got != 1000 {
		t.Fatalf("remaining = %d, want 1000: cancel refunds, and settle after cancel does nothing", got)
	}
}

func TestDelayedOutputQuota(t *testing.T) {
	l, s, _ := newTestLimiter(t, []Rule{{
		Name: "daily-output", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: 24 * time.Hour,
		Unit: OutputTokens, By: byUser(), Reject: &Rejection{Status: 429, Body: []byte("quota")},
	}})
	req := user("carol")
	req.Estimate = Usage{InputTokens: 50, OutputTokens: 4000}
	// The estimate is larger than the quota, but a delayed rule only peeks.
	d := l.Check(ctx, req)
	if !d.Allowed {
		t.Fatalf("first request denied: %+v", d.Limiting)
	}
	if err := d.Reservation.Settle(ctx, Usage{InputTokens: 50, OutputTokens: 700}); err != nil {
		t.Fatal(err)
	}
	d = l.Check(ctx, req)
	if !d.Allowed {
		t.Fatalf("second request denied with 300 tokens left")
	}
	// This response crosses the quota: it is charged in full.
	if err := d.Reservation.Settle(ctx, Usage{OutputTokens: 900}); err != nil {
		t.Fatal(err)
	}
	d = l.Check(ctx, req)
	if d.Allowed || d.Limiting.Rule.Reject == nil || string(d.Limiting.Rule.Reject.Body) != "quota" {
		t.Fatalf("third request: allowed=%v, want denied with the rule's rejection", d.Allowed)
	}
	if d.Reservation != nil {
		t.Fatalf("a denied request holds a reservation")
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 24*time.Hour {
		t.Fatalf("RetryAfter = %v, want until the daily window ends", d.RetryAfter)
	}
	// Another user is unaffected.
	if d := l.Check(ctx, user("dave")); !d.Allowed {
		t.Fatalf("another user denied")
	}
	_ = s
}

func TestConcurrencyRuleReleasesOnSettle(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{{Name: "inflight", Algorithm: algorithms.Concurrency, Limit: 2, Period: time.Minute}})
	a, b := l.Check(ctx, user("x")), l.Check(ctx, user("x"))
	if !a.Allowed || !b.Allowed {
		t.Fatalf("two slots, two requests: got %v %v", a.Allowed, b.Allowed)
	}
	if c := l.Check(ctx, user("x")); c.Allowed {
		t.Fatalf("third in-flight request admitted")
	}
	if err := a.Reservation.Settle(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	if c := l.Check(ctx, user("x")); !c.Allowed {
		t.Fatalf("slot not released by Settle")
	}
	if err := b.Reservation.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if c := l.Check(ctx, user("x")); !c.Allowed {
		t.Fatalf("slot not released by Cancel")
	}
}

func TestSetRulesKeepsCountersOfUnchangedRules(t *testing.T) {
	keep := Rule{Name: "keep", Algorithm: algorithms.FixedWindow, Limit: 5, Period: time.Minute}
	change := Rule{Name: "change", Algorithm: algorithms.FixedWindow, Limit: 5, Period: time.Minute}
	l, _, _ := newTestLimiter(t, []Rule{keep, change})
	for i := 0; i < 3; i++ {
		l.Check(ctx, user("a"))
	}
	change.Limit = 6
	if err := l.SetRules([]Rule{keep, change}); err != nil {
		t.Fatal(err)
	}
	d := l.Peek(ctx, user("a"))
	if got := d.Result(0).Remaining; got != 2 {
		t.Errorf("unchanged rule remaining = %d, want 2 (counter survives)", got)
	}
	if got := d.Result(1).Remaining; got != 6 {
		t.Errorf("changed rule remaining = %d, want 6 (fresh counter)", got)
	}
	// An invalid set is refused whole; the old rules stay.
	err := l.SetRules([]Rule{keep, {Name: "bad name!", Limit: 1, Period: time.Second}})
	if !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("SetRules(invalid) = %v, want ErrInvalidRule", err)
	}
	if got := len(l.Rules()); got != 2 {
		t.Fatalf("%d rules after a refused replacement, want 2", got)
	}
}

func TestSetModeTogglesWithoutLosingCounters(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute}})
	l.Check(ctx, user("a"))
	if d := l.Check(ctx, user("a")); d.Allowed {
		t.Fatal("over the limit but allowed")
	}
	if err := l.SetMode("r", Shadow); err != nil {
		t.Fatal(err)
	}
	if d := l.Check(ctx, user("a")); !d.Allowed || !d.ShadowDenied {
		t.Fatalf("shadow: allowed=%v shadowDenied=%v", d.Allowed, d.ShadowDenied)
	}
	if err := l.SetMode("r", Enforce); err != nil {
		t.Fatal(err)
	}
	if d := l.Check(ctx, user("a")); d.Allowed {
		t.Fatal("back to enforce, the counter should still be exhausted")
	}
	if err := l.SetMode("nope", Off); !errors.Is(err, ErrUnknownRule) {
		t.Fatalf("SetMode(unknown) = %v, want ErrUnknownRule", err)
	}
}

func TestInvalidRules(t *testing.T) {
	cases := []struct {
		name string
		rule Rule
	}{
		{"empty name", Rule{Limit: 1, Period: time.Second}},
		{"bad name", Rule{Name: "a b", Limit: 1, Period: time.Second}},
		{"negative limit", Rule{Name: "a", Limit: -1, Period: time.Second}},
		{"limit over 2^53", Rule{Name: "a", Limit: algorithms.MaxLimit + 1, Period: time.Second}},
		{"zero period", Rule{Name: "a", Limit: 1}},
		{"sub-microsecond period", Rule{Name: "a", Limit: 1, Period: time.Nanosecond * 1500}},
		{"calendar on a bucket", Rule{Name: "a", Limit: 1, Calendar: Day}},
		{"delayed concurrency", Rule{Name: "a", Algorithm: algorithms.Concurrency, Limit: 1, Period: time.Second, Unit: OutputTokens}},
		{"local without fallback", Rule{Name: "a", Limit: 1, Period: time.Second, OnStoreError: FailLocal}},
		{"unknown unit", Rule{Name: "a", Limit: 1, Period: time.Second, Unit: 99}},
	}
	for _, c := range cases {
		if _, err := New(newRefStore(), []Rule{c.rule}); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%s: New = %v, want ErrInvalidRule", c.name, err)
		}
	}
	r := Rule{Name: "dup", Limit: 1, Period: time.Second}
	if _, err := New(newRefStore(), []Rule{r, r}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("duplicate names: New = %v, want ErrInvalidRule", err)
	}
}

func TestGuardRejectsBeforeAnyCounterChanges(t *testing.T) {
	errModel := errors.New("model not allowed")
	l, s, _ := newTestLimiter(t, []Rule{
		{Name: "count", Algorithm: algorithms.FixedWindow, Limit: 10, Period: time.Minute},
		{Name: "models", Guard: func(r *Request) error {
			if r.Model != "gpt-4o-mini" {
				return errModel
			}
			return nil
		}},
	})
	d := l.Check(ctx, &Request{Facts: dimensions.Facts{Model: "gpt-4o"}})
	if d.Allowed || !errors.Is(d.Limiting.Err, errModel) || d.Limiting.Rule.Name != "models" {
		t.Fatalf("allowed=%v err=%v, want the guard's rejection", d.Allowed, d.Limiting.Err)
	}
	if s.calls.Load() != 0 {
		t.Fatalf("the store was called for a guarded-out request")
	}
	d = l.Check(ctx, &Request{Facts: dimensions.Facts{Model: "gpt-4o-mini"}})
	if !d.Allowed || d.Len() != 1 || d.Limiting.Remaining != 9 {
		t.Fatalf("allowed=%v len=%d remaining=%d, want allowed, counted once", d.Allowed, d.Len(), d.Limiting.Remaining)
	}
}

func TestIndexedRulesMatchOnlyTheirValue(t *testing.T) {
	var rules []Rule
	for i := 0; i < 1000; i++ {
		rules = append(rules, Rule{
			Name: fmt.Sprintf("model-%d", i), Algorithm: algorithms.FixedWindow, Limit: int64(i + 1), Period: time.Minute,
			When: Equal(dimensions.Model, fmt.Sprintf("m%d", i)),
		})
	}
	rules = append(rules, Rule{Name: "all", Algorithm: algorithms.FixedWindow, Limit: 5000, Period: time.Minute})
	l, _, _ := newTestLimiter(t, rules)
	d := l.Check(ctx, &Request{Facts: dimensions.Facts{Model: "m417"}})
	if d.Len() != 2 || d.Result(0).Rule.Name != "model-417" || d.Result(1).Rule.Name != "all" {
		t.Fatalf("got %d results (%v), want model-417 then all", d.Len(), d.Results())
	}
	if d.Limiting.Rule.Name != "model-417" || d.Limiting.Remaining != 417 {
		t.Fatalf("limiting = %s remaining %d, want model-417 remaining 417", d.Limiting.Rule.Name, d.Limiting.Remaining)
	}
}

func TestCalendarDayWindowFollowsTheZone(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	l, _, clk := newTestLimiter(t, []Rule{{
		Name: "daily", Algorithm: algorithms.FixedWindow, Limit: 1, Calendar: Day, Location: kolkata,
	}})
	// 10:00 UTC is 15:30 in Kolkata; the local day ends at 18:30 UTC.
	l.Check(ctx, user("a"))
	d := l.Check(ctx, user("a"))
	if d.Allowed || d.RetryAfter != 8*time.Hour+30*time.Minute {
		t.Fatalf("allowed=%v RetryAfter=%v, want denied until local midnight (8h30m)", d.Allowed, d.RetryAfter)
	}
	clk.Advance(8*time.Hour + 30*time.Minute)
	if d := l.Check(ctx, user("a")); !d.Allowed {
		t.Fatalf("denied after local midnight")
	}
}

func TestCalendarMonthWindow(t *testing.T) {
	l, _, clk := newTestLimiter(t, []Rule{{
		Name: "monthly", Algorithm: algorithms.FixedWindow, Limit: 1, Calendar: Month, Unit: Cost,
	}})
	req := &Request{Estimate: Usage{Cost: 1}}
	l.Check(ctx, req)
	d := l.Check(ctx, req)
	// 2026-11-22 10:00 UTC to 2026-12-01 00:00 UTC.
	want := 8*24*time.Hour + 14*time.Hour
	if d.Allowed || d.RetryAfter != want {
		t.Fatalf("allowed=%v RetryAfter=%v, want denied for %v", d.Allowed, d.RetryAfter, want)
	}
	clk.Advance(want)
	if d := l.Check(ctx, req); !d.Allowed {
		t.Fatalf("denied in the next month")
	}
}

func TestHugeResetSaturates(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{{Name: "out", Algorithm: algorithms.TokenBucket, Limit: 10, Period: time.Minute, Unit: OutputTokens}})
	d := l.Check(ctx, user("a"))
	// 1e10 tokens at 10 a minute drain in about 1900 years.
	if err := d.Reservation.Settle(ctx, Usage{OutputTokens: 1e10}); err != nil {
		t.Fatal(err)
	}
	d = l.Check(ctx, user("a"))
	if d.Allowed || d.RetryAfter <= 0 || d.Limiting.Reset <= 0 {
		t.Fatalf("allowed=%v RetryAfter=%v Reset=%v, want denied with positive, saturated durations", d.Allowed, d.RetryAfter, d.Limiting.Reset)
	}
}

func TestInIndexesEveryValue(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{
		{Name: "cheap", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, When: In(dimensions.Model, "a", "b", "a")},
		{Name: "other", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, When: Equal(dimensions.Model, "b")},
	})
	for _, c := range []struct {
		model string
		want  []string
	}{{"a", []string{"cheap"}}, {"b", []string{"cheap", "other"}}, {"c", nil}} {
		d := l.Peek(ctx, &Request{Facts: dimensions.Facts{Model: c.model}})
		var got []string
		for _, r := range d.Results() {
			got = append(got, r.Rule.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("model %q matched %v, want %v", c.model, got, c.want)
		}
	}
}

func TestValidateRulesNamesTheRule(t *testing.T) {
	l, _, _ := newTestLimiter(t, nil)
	err := l.ValidateRules([]Rule{{Name: "ok", Limit: 1, Period: time.Second}, {Name: "local", Limit: 1, Period: time.Second, OnStoreError: FailLocal}})
	var re *RuleError
	if !errors.As(err, &re) || re.Index != 1 || !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("ValidateRules = %v, want a *RuleError for index 1 wrapping ErrInvalidRule", err)
	}
	if len(l.Rules()) != 0 {
		t.Fatalf("ValidateRules changed the rules")
	}
}
