package limiter

import (
	"context"
	"time"
)

// Observer is told what the limiter decides. Calls are synchronous, on the
// request's goroutine: implementations must be fast and safe for concurrent
// use. Embed NopObserver to implement only some methods.
type Observer interface {
	// Decided is called after every check.
	Decided(ctx context.Context, req *Request, d Decision)
	// Settled is called after a reservation is settled or cancelled, with
	// the usage charged (zero for a cancel) and the store's error, if any.
	Settled(ctx context.Context, res *Reservation, actual Usage, err error)
	// StoreFailed is called when the store could not decide.
	StoreFailed(ctx context.Context, err error)
}

// NopObserver does nothing. It is the default Observer.
type NopObserver struct{}

// Decided does nothing.
func (NopObserver) Decided(context.Context, *Request, Decision) {}

// Settled does nothing.
func (NopObserver) Settled(context.Context, *Reservation, Usage, error) {}

// StoreFailed does nothing.
func (NopObserver) StoreFailed(context.Context, error) {}

var _ Observer = NopObserver{}

// StoreObserver is an Observer that is also told how long each call to
// the main store took (checks, settlements, threshold marks), and its
// error. A call the circuit breaker refused is not reported.
type StoreObserver interface {
	Observer
	StoreCalled(ctx context.Context, elapsed time.Duration, err error)
}

// attacher is an Observer that wants to know the Limiter it observes
// (Metrics reads its circuit state).
type attacher interface{ attach(*Limiter) }
