package hostiletest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

// TestFloodOfExhaustedKeys is the flood the memory store cannot shed:
// every flood key is exhausted by its first request (a per-user rule of
// limit 1), so every key is denying and none may be evicted. Once the
// store is full, a new user's batch has no room and Apply returns
// store.ErrFull for the whole batch, so that every rule of the batch
// follows its fail mode, including a global rule whose counter is in the
// store: with FailAllow the global limit stops being enforced; with
// FailDeny every new user is refused.
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
			var allowed, errs, full int
			var firstErr error
			for i := range newUsers {
				d := check("user-" + strconv.Itoa(i))
				if d.Allowed {
					allowed++
				}
				if d.Err != nil {
					errs++
					if errors.Is(d.Err, store.ErrFull) {
						full++
					}
					if firstErr == nil {
						firstErr = d.Err
					}
				}
			}
			room := globalLimit - (capKeys - 1) // the global key takes one slot of the cap
			t.Logf("%d new users, one request each: %d allowed, %d store errors (%d ErrFull; first: %v); the global rule had room for %d",
				newUsers, allowed, errs, full, firstErr, room)
			var problem string
			switch {
			case allowed > globalLimit:
				problem = "the global rule was bypassed: " + strconv.Itoa(allowed) + " of " + strconv.Itoa(newUsers) +
					" new users admitted, want <= " + strconv.Itoa(room)
			case full > 0 && allowed < room:
				problem = "new users were refused although the global rule had room: " + strconv.Itoa(allowed) +
					" admitted, want " + strconv.Itoa(room)
			}
			if problem != "" {
				// Documented (store/memory: "When nothing may go, Apply
				// returns an error wrapping store.ErrFull"), but its
				// consequence through the limiter is not; reported in
				// issue 9's hostile input findings.
				t.Skipf("KNOWN ISSUE (fail mode %v): a store full of exhausted keys answers ErrFull to every new key's batch; %s", mode, problem)
			}
		})
	}
}
