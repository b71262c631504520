package lease

import (
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

// Option configures a [Store].
type Option func(*config)

type config struct {
	hot     func(key string) bool
	size    func(p algorithms.Params) int64
	maxKeys int
	margin  int64 // µs
}

// defaultMaxKeys is the default bound on leased keys.
const defaultMaxKeys = 1024

// WithHotKeys makes the keys for which hot returns true leased. hot must
// be safe for concurrent use and must not retain the key. It is asked on
// each leasable op whose key has no lease yet, so it should be cheap; a
// key with a lease keeps it. The default leases nothing: the Store passes
// every batch through.
func WithHotKeys(hot func(key string) bool) Option {
	return func(c *config) { c.hot = hot }
}

// WithHotPrefixes is [WithHotKeys] for the keys that start with one of
// prefixes (for example a rule's name, as the limiter builds keys).
func WithHotPrefixes(prefixes ...string) Option {
	ps := append([]string(nil), prefixes...)
	return WithHotKeys(func(key string) bool {
		for _, p := range ps {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	})
}

// WithLeaseSize sets how many units an instance holds at most for a key
// with parameters p: a lease is topped up to size(p) units, clamped to
// [1, p.Capacity()]. It is the N of the overshoot bound. The default is
// [DefaultLeaseSize].
func WithLeaseSize(size func(p algorithms.Params) int64) Option {
	return func(c *config) { c.size = size }
}

// DefaultLeaseSize is the default lease size: 1/64 of the capacity, at
// least 1 unit. With 4 instances, a token bucket admits at most 1/16 of
// its capacity above what it would admit alone.
func DefaultLeaseSize(p algorithms.Params) int64 {
	return max(1, p.Capacity()/64)
}

// WithMaxKeys bounds the number of keys with a lease. A hot key seen when
// n keys have one is passed through to the backing store. The default is
// 1024; n < 1 means the default.
func WithMaxKeys(n int) Option {
	return func(c *config) {
		if n < 1 {
			n = defaultMaxKeys
		}
		c.maxKeys = n
	}
}

// WithWindowMargin sets how long before the end of a fixed window, on the
// caller's clock, [Store.Release] stops returning the window's unused
// units: a refund that reached the backing store after the window rolled
// over would give units of the next window. Make it larger than the round
// trip plus the drift between the caller's clock and the backing store's.
// The default is 100ms.
func WithWindowMargin(d time.Duration) Option {
	return func(c *config) { c.margin = max(0, d.Microseconds()) }
}
