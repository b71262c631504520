package limiter

import (
	"context"
	"log/slog"
	"time"

	"github.com/tollgate-go/tollgate/store"
)

// Option configures a Limiter.
type Option func(*config)

type config struct {
	clock            func() time.Time
	observer         Observer
	logger           *slog.Logger
	failMode         FailMode
	fallback         store.Store
	instances        int64
	timeout          time.Duration
	breakerFailures  int
	breakerInterval  time.Duration
	waitPollInterval time.Duration
	recorder         Recorder
	thresholdHook    func(context.Context, ThresholdEvent)
	marks            *markCache
	fullOnDenial     bool
	downshift        func(context.Context, *Request, Decision) *Request
}

func defaultConfig() config {
	return config{
		observer:         NopObserver{},
		logger:           slog.New(slog.DiscardHandler),
		failMode:         FailAllow,
		instances:        1,
		timeout:          100 * time.Millisecond,
		breakerFailures:  5,
		breakerInterval:  time.Second,
		waitPollInterval: 10 * time.Millisecond,
	}
}

// WithClock makes the limiter read time from now instead of the system
// clock. Tests pass a fake clock. The default reads the monotonic clock
// against a wall-clock reading taken at construction, which costs half of
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// WithObserver sets the Observer told about decisions; the default does
// nothing.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o != nil {
			c.observer = o
		}
	}
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithFailMode sets the fail mode of rules whose OnStoreError is
// FailDefault. The default is FailAllow.
func WithFailMode(m FailMode) Option {
	return func(c *config) {
		if m != FailDefault {
			c.failMode = m
		}
	}
}

// WithFallback sets the store used by FailLocal rules while the main store
// cannot decide, usually a memory store, and the number of instances the
// limit is shared by: each instance enforces ceil(limit/instances) locally.
// Rules that fail locally need it.
func WithFallback(s store.Store, instances int) Option {
	return func(c *config) {
		c.fallback = s
		c.instances = int64(max(1, instances))
	}
}

// WithStoreTimeout bounds every store call, so that a slow store costs at
// most d. The default is 100ms; 0 means no bound beyond the caller's
// context. An in-process store (one with an InProcess() bool method
// returning true) is never bounded: it cannot block on I/O.
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithCircuitBreaker opens the circuit after the given number of
// consecutive store failures: while open, checks do not call the store and
// follow the fail mode at once, except for one probe per interval, whose
// success closes the circuit again. The default is 5 failures and 1s;
// failures <= 0 disables the breaker. An error wrapping store.ErrPartial (a
// node of a Redis Cluster failing while others answer) counts as an answer
// from the store, not a failure: that decision follows its fail mode, and
// the keys of healthy nodes keep being decided.
func WithCircuitBreaker(failures int, interval time.Duration) Option {
	return func(c *config) {
		c.breakerFailures = failures
		c.breakerInterval = interval
	}
}
