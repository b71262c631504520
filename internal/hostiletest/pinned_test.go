package hostiletest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

// TestFloodOfExhaustedKeys is the flood the memory store cannot shed:
// every flood key is exhausted by its first request (a per-user rule of
// limit 1), so every key is denying and none may be evicted. Once the
// store is full, a new user's key is decided as fresh and not remembered,
// while the global rule's existing counter is charged as usual: the
// global limit holds exactly, whatever the fail mode, and no check fails.
// (It used to answer store.ErrFull for the whole batch, so that the global
// rule followed the fail mode: bypassed when failing open, every new user
// refused when failing closed.)
func TestFloodOfExhaustedKeys(t *testing.T) {
	const (
		capKeys     = 1_000
		globalLimit = 3_000
		newUsers    = 5_000
	)
	for _, mode := range []limiter.FailMode{limiter.FailAllow, limiter.FailDeny} {
		t.Run(mode.String(), func(t *testing.T) {
			s := memory.New(memory.WithMaxKeys(capKeys))
			defer s.Close()
			l, err := limiter.New(s, []limiter.Rule{
				{Name: "global", Limit: globalLimit, Period: time.Hour},
				{Name: "per-user", Limit: 1, Period: 24 * time.Hour, By: []dimensions.Dimension{dimensions.User}},
			}, limiter.WithFailMode(mode), limiter.WithCircuitBreaker(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			check := func(user string) limiter.Decision {
				return l.Check(ctx, &limiter.Request{Facts: dimensions.Facts{User: user}})
			}
			// The attacker: one request per user, each exhausting its key.
			for i := range capKeys {
				if d := check("attacker-" + strconv.Itoa(i)); !d.Allowed && d.Err == nil {
					t.Fatalf("attacker %d denied: %+v", i, d.Limiting)
				}
			}
			t.Logf("after %d attacker requests: store Len %d (cap %d)", capKeys, s.Len(), capKeys)
			// Legitimate new users, one request each: the global rule
			// has globalLimit-capKeys+1 requests left.
			var allowed, errs int
			var firstErr error
			for i := range newUsers {
				d := check("user-" + strconv.Itoa(i))
				if d.Allowed {
					allowed++
				}
				if d.Err != nil {
					errs++
					if firstErr == nil {
						firstErr = d.Err
					}
				}
			}
			room := globalLimit - capKeys // every attacker request was admitted and counted
			t.Logf("%d new users, one request each: %d allowed, %d store errors (first: %v); the global rule had room for %d; the store dropped %d new keys",
				newUsers, allowed, errs, firstErr, room, s.Dropped())
			if errs != 0 {
				t.Errorf("%d store errors, want none: a full store decides new keys without remembering them", errs)
			}
			if allowed != room {
				t.Errorf("%d of %d new users admitted, want exactly %d: the global rule must hold", allowed, newUsers, room)
			}
			if s.Dropped() == 0 {
				t.Errorf("Dropped() = 0, want the new keys the full store did not remember")
			}
			// The attackers' exhausted keys stay denied.
			if d := check("attacker-0"); d.Allowed {
				t.Errorf("an exhausted attacker key was admitted again")
			}
		})
	}
}
