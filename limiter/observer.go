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

// Observers returns an Observer that tells each of list, in order: pass
// Metrics and an Observer of your own to WithObserver together. It is a
// StoreObserver when one of list is, and passes each Observer the limiter
// it observes as WithObserver would.
func Observers(list ...Observer) Observer {
	m := multiObserver{}
	for _, o := range list {
		if o == nil {
			continue
		}
		if _, nop := o.(NopObserver); nop {
			continue
		}
		m.all = append(m.all, o)
		if s, ok := o.(StoreObserver); ok {
			m.stores = append(m.stores, s)
		}
	}
	if len(m.stores) == 0 {
		return &m // so that the limiter does not time store calls for nobody
	}
	return multiStoreObserver{&m}
}

type multiObserver struct {
	all    []Observer
	stores []StoreObserver
}

// multiStoreObserver is a multiObserver with StoreObservers in it.
type multiStoreObserver struct{ *multiObserver }

var _ StoreObserver = multiStoreObserver{}

func (m *multiObserver) Decided(ctx context.Context, req *Request, d Decision) {
	for _, o := range m.all {
		o.Decided(ctx, req, d)
	}
}

func (m *multiObserver) Settled(ctx context.Context, res *Reservation, actual Usage, err error) {
	for _, o := range m.all {
		o.Settled(ctx, res, actual, err)
	}
}

func (m *multiObserver) StoreFailed(ctx context.Context, err error) {
	for _, o := range m.all {
		o.StoreFailed(ctx, err)
	}
}

func (m multiStoreObserver) StoreCalled(ctx context.Context, elapsed time.Duration, err error) {
	for _, o := range m.stores {
		o.StoreCalled(ctx, elapsed, err)
	}
}

func (m *multiObserver) attach(l *Limiter) {
	for _, o := range m.all {
		if a, ok := o.(attacher); ok {
			a.attach(l)
		}
	}
}
