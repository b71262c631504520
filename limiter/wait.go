package limiter

import (
	"context"
	"errors"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

// Errors of Wait.
var (
	// ErrDeadline is returned by Wait, at once, when the context's deadline
	// comes before the request could be admitted.
	ErrDeadline = errors.New("limiter: would exceed context deadline")
	// ErrNeverAdmitted is returned by Wait for a request larger than a
	// rule's capacity: no wait can admit it.
	ErrNeverAdmitted = errors.New("limiter: request exceeds a rule's capacity")
	// ErrStoreUnavailable is returned by Wait when a rule failing closed
	// denied because the store could not decide.
	ErrStoreUnavailable = errors.New("limiter: store unavailable")
)

// Wait checks req and, while it is denied, waits for the time the tightest
// rule names and checks again, until it is admitted or ctx ends. It fails
// at once, without waiting, when ctx's deadline comes before the wait
// would end; a guard's rejection is returned as its error. A rule with no predictable wait (concurrency) is polled every
// 10ms. The returned Decision is the last check's.
func (l *Limiter) Wait(ctx context.Context, req *Request) (Decision, error) {
	for {
		d := l.Check(ctx, req)
		switch {
		case d.Allowed:
			return d, nil
		case d.Limiting.Err != nil:
			return d, d.Limiting.Err
		case d.Limiting.StoreError:
			return d, ErrStoreUnavailable
		case d.Limiting.Reason == algorithms.ReasonExceedsCapacity:
			return d, ErrNeverAdmitted
		}
		wait := d.RetryAfter
		if wait <= 0 {
			wait = l.cfg.waitPollInterval
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return d, ErrDeadline
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return d, ctx.Err()
		case <-t.C:
		}
	}
}
