package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// mustLoad loads a document the test expects to be valid.
func mustLoad(t testing.TB, doc string, opts ...Option) *Policy {
	t.Helper()
	p, err := Load([]byte(doc), opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

// clock is a settable fake clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newLimiter returns a limiter over a fresh memory store with the rules of
// p and a fake clock.
func newLimiter(t testing.TB, p *Policy, opts ...limiter.Option) (*limiter.Limiter, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)}
	var rules []limiter.Rule
	if p != nil {
		rules = p.Rules()
	}
	// memory.Store does not (yet) declare itself in-process, so the
	// limiter would put a deadline on every call: turn that off.
	l, err := limiter.New(memory.New(), rules, append([]limiter.Option{limiter.WithClock(clk.now), limiter.WithStoreTimeout(0)}, opts...)...)
	if err != nil {
		t.Fatalf("limiter.New: %v", err)
	}
	return l, clk
}

// check runs one Check and settles any reservation with the estimate.
func check(t testing.TB, l *limiter.Limiter, req *limiter.Request) limiter.Decision {
	t.Helper()
	d := l.Check(context.Background(), req)
	if d.Reservation != nil {
		if err := d.Reservation.Settle(context.Background(), req.Estimate); err != nil {
			t.Fatalf("Settle: %v", err)
		}
	}
	return d
}

// admitted counts how many of n identical requests are allowed.
func admitted(t testing.TB, l *limiter.Limiter, req *limiter.Request, n int) int {
	t.Helper()
	ok := 0
	for range n {
		if check(t, l, req).Allowed {
			ok++
		}
	}
	return ok
}

func req(f dimensions.Facts) *limiter.Request { return &limiter.Request{Facts: f} }

// matched returns the names of the rules that matched in d.
func matched(d *limiter.Decision) []string {
	var out []string
	for i := range d.Len() {
		out = append(out, d.Result(i).Rule.Name)
	}
	return out
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
