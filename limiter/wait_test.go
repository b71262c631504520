package limiter

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

func TestWaitWaitsForCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := New(newRefStore(), []Rule{{Name: "r", Algorithm: algorithms.TokenBucket, Limit: 1, Period: time.Second}}, WithClock(time.Now))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < 3; i++ {
			if _, err := l.Wait(ctx, user("a")); err != nil {
				t.Fatalf("wait %d: %v", i, err)
			}
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Fatalf("three requests at 1/s took %v, want 2s", got)
		}
	})
}

func TestWaitFailsAtOnceWhenTheDeadlineIsTooClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := New(newRefStore(), []Rule{{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute}}, WithClock(time.Now))
		if err != nil {
			t.Fatal(err)
		}
		l.Check(ctx, user("a"))
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err = l.Wait(c, user("a"))
		if !errors.Is(err, ErrDeadline) || time.Since(start) != 0 {
			t.Fatalf("err=%v after %v, want ErrDeadline at once", err, time.Since(start))
		}
	})
}

func TestWaitNeverWaitsForTheImpossible(t *testing.T) {
	l, _, _ := newTestLimiter(t, []Rule{{Name: "r", Limit: 10, Period: time.Second, Unit: Tokens}})
	_, err := l.Wait(ctx, &Request{Estimate: Usage{InputTokens: 11}})
	if !errors.Is(err, ErrNeverAdmitted) {
		t.Fatalf("err=%v, want ErrNeverAdmitted", err)
	}
}

func TestWaitPollsConcurrencySlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := New(newRefStore(), []Rule{{Name: "r", Algorithm: algorithms.Concurrency, Limit: 1, Period: time.Minute}}, WithClock(time.Now))
		if err != nil {
			t.Fatal(err)
		}
		held := l.Check(ctx, user("a"))
		go func() {
			time.Sleep(95 * time.Millisecond)
			held.Reservation.Cancel(ctx)
		}()
		start := time.Now()
		d, err := l.Wait(ctx, user("a"))
		if err != nil || !d.Allowed {
			t.Fatalf("err=%v allowed=%v", err, d.Allowed)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("waited %v, want the first 10ms poll after the release (100ms)", got)
		}
	})
}
