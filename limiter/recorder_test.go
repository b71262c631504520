package limiter

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// countRecorder counts, per user, requests, denials and output tokens in
// fixed windows that never deny.
type countRecorder struct{ records atomic.Int64 }

var recParams = algorithms.Params{Kind: algorithms.FixedWindow, Limit: algorithms.MaxLimit, Period: int64(time.Hour / time.Microsecond)}

func (c *countRecorder) Record(req *Request, now int64) Recording {
	c.records.Add(1)
	u := req.User
	return &u
}

func (c *countRecorder) op(ops []store.Op, rec Recording, what string, n int64) []store.Op {
	if n == 0 {
		return ops
	}
	return append(ops, store.Op{Key: "rec:" + what + ":" + *rec.(*string), Params: recParams, Cost: n, Mode: algorithms.Force})
}

func (c *countRecorder) AppendRequest(ops []store.Op, rec Recording) []store.Op {
	return c.op(ops, rec, "req", 1)
}

func (c *countRecorder) AppendDenial(ops []store.Op, rec Recording) []store.Op {
	return c.op(ops, rec, "deny", 1)
}

func (c *countRecorder) AppendUsage(ops []store.Op, rec Recording, u Usage) []store.Op {
	return c.op(ops, rec, "out", u.OutputTokens)
}

var _ Recorder = (*countRecorder)(nil)

func (s *refStore) count(key string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.states[key]; p != nil {
		return p[1]
	}
	return 0
}

func TestRecorderRidesInTheStoreCallsOfCheckAndSettle(t *testing.T) {
	rec := &countRecorder{}
	rules := []Rule{{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute, By: byUser()}}
	l, s, _ := newTestLimiter(t, rules, WithRecorder(rec))
	steps := []struct {
		name                  string
		do                    func() Decision
		calls, req, deny, out int64
	}{
		{"peek records nothing", func() Decision { return l.Peek(ctx, user("alice")) }, 1, 0, 0, 0},
		{"admitted: one call", func() Decision { return l.Check(ctx, user("alice")) }, 2, 1, 0, 0},
		{"settled: one call", func() Decision {
			d := l.Check(ctx, user("alice"))
			d.Reservation.Settle(ctx, Usage{OutputTokens: 7})
			return d
		}, 4, 2, 0, 7},
		{"denied: the check and the denial", func() Decision { return l.Check(ctx, user("alice")) }, 6, 2, 1, 7},
		{"store down: no denial write", func() Decision {
			s.setFailing(errDown)
			defer s.setFailing(nil)
			return l.Check(ctx, &Request{Facts: user("alice").Facts})
		}, 7, 2, 1, 7},
	}
	for _, st := range steps {
		st.do()
		got := [4]int64{s.calls.Load(), s.count("rec:req:alice"), s.count("rec:deny:alice"), s.count("rec:out:alice")}
		if want := [4]int64{st.calls, st.req, st.deny, st.out}; got != want {
			t.Errorf("%s: calls, requests, denials, output = %v, want %v", st.name, got, want)
		}
	}
	if got := rec.records.Load(); got != 4 {
		t.Errorf("Record called %d times, want 4 (every check, no peek)", got)
	}
}

func TestRecorderCountsRequestsThatMatchNoRuleWhenSettled(t *testing.T) {
	l, s, _ := newTestLimiter(t, nil, WithRecorder(&countRecorder{}))
	d := l.Check(ctx, user("bob"))
	if s.calls.Load() != 0 || d.Reservation == nil {
		t.Fatalf("check: %d store calls, reservation %v; want none and a reservation", s.calls.Load(), d.Reservation)
	}
	d.Reservation.Cancel(ctx)
	if s.calls.Load() != 1 || s.count("rec:req:bob") != 1 {
		t.Errorf("cancel: %d calls, %d requests; want 1 and 1", s.calls.Load(), s.count("rec:req:bob"))
	}
	d.Reservation.Settle(ctx, Usage{OutputTokens: 1})
	if s.calls.Load() != 1 {
		t.Errorf("a second finish called the store")
	}
}

func TestRecorderCountsAFailedOpenCheckWhenSettled(t *testing.T) {
	rules := []Rule{{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute, By: byUser()}}
	l, s, _ := newTestLimiter(t, rules, WithRecorder(&countRecorder{}))
	s.setFailing(errDown)
	d := l.Check(ctx, user("carol"))
	s.setFailing(nil)
	if !d.Allowed || d.Err == nil {
		t.Fatalf("check: allowed %v, err %v; want failing open", d.Allowed, d.Err)
	}
	d.Reservation.Settle(ctx, Usage{})
	if got := s.count("rec:req:carol"); got != 1 {
		t.Errorf("requests %d, want 1", got)
	}
}
