package grpclimit

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/metadata"
)

// Option configures the interceptors and the rate-limiter adapter.
type Option func(*config)

// Identity is what the host's authentication knows about a call's caller.
// The zero Identity knows nothing.
type Identity struct {
	// User and Tenant fill the user and tenant dimensions.
	User, Tenant string
	// Claims are passed to rule predicates as limiter.Request.Identity.
	Claims map[string]any
	// Custom are custom dimensions, by name.
	Custom map[string]string
}

// IdentityFunc names the caller of a call from its context, full method
// name ("/package.Service/Method") and metadata (incoming on a server,
// outgoing on a client). It must be safe for concurrent use.
type IdentityFunc func(ctx context.Context, fullMethod string, md metadata.MD) Identity

type config struct {
	identity    IdentityFunc
	logger      *slog.Logger
	wait        bool
	unavailable time.Duration
}

func defaultConfig() config {
	return config{
		logger:      slog.New(slog.DiscardHandler),
		unavailable: time.Second,
	}
}

func newConfig(opts []Option) config {
	c := defaultConfig()
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithIdentity sets the resolver of a call's user and tenant (and claims
// and custom dimensions); it is how the host's authentication plugs in.
// The default knows no identity.
func WithIdentity(f IdentityFunc) Option {
	return func(c *config) { c.identity = f }
}

// WithLogger sets the logger of rejections; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithWait makes the client interceptors wait for capacity (limiter.Wait)
// instead of failing at once, for as long as the call's context allows.
// It has no effect on server interceptors, where the client's own retry
// policy waits, told by grpc-retry-pushback-ms.
func WithWait() Option {
	return func(c *config) { c.wait = true }
}

// WithUnavailableRetry sets the retry delay advertised when a rule failing
// closed denies a call because the store could not decide (default 1s).
func WithUnavailableRetry(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.unavailable = d
		}
	}
}
