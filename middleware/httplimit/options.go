package httplimit

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/tokens"
)

// Option configures a Middleware.
type Option func(*config)

// Identity is what the host's authentication knows about a request's
// caller. The zero Identity knows nothing.
type Identity struct {
	// User and Tenant fill the user and tenant dimensions.
	User, Tenant string
	// Claims are passed to rule predicates as limiter.Request.Identity.
	Claims map[string]any
	// Custom are custom dimensions, by name.
	Custom map[string]string
}

// DenyFunc writes the answer to a denied request. The rate-limit headers
// (Retry-After, RateLimit, RateLimit-Policy and, when enabled, the
// OpenAI-style ones) are already set on w when it is called. res is the
// check's result; it must not be retained.
type DenyFunc func(w http.ResponseWriter, r *http.Request, res *Result)

// Outcome says how an LLM-mode request was charged.
type Outcome uint8

const (
	// Settled: the response carried usage, which was charged.
	Settled Outcome = iota + 1
	// UsageMissing: the response completed without usage; the estimate was
	// charged.
	UsageMissing
	// Disconnected: the client went away before the response completed;
	// the measured usage was charged if the stream had carried it, else
	// the estimate.
	Disconnected
	// Cancelled: the upstream answered 5xx or 429 (or nothing); the
	// reservation was given back.
	Cancelled
)

var outcomeNames = [...]string{"", "settled", "usage_missing", "disconnected", "cancelled"}

// String returns the outcome's name as it appears in logs.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return "unknown"
}

// Charge describes the settlement of one LLM-mode request, for the hook
// set by WithChargeHook.
type Charge struct {
	// Outcome says what was charged and why.
	Outcome Outcome
	// Status is the upstream's HTTP status (0 when it wrote nothing).
	Status int
	// Model is the model the request was served with: the one it named,
	// or the one the limiter downshifted it to.
	Model string
	// DownshiftedFrom is, for a downshifted request, the model it named;
	// empty otherwise.
	DownshiftedFrom string
	// Estimate is what was reserved at check time (the downshifted
	// request's estimate when downshifted).
	Estimate limiter.Usage
	// Charged is what the reservation was settled to (zero when Cancelled).
	Charged limiter.Usage
	// Measured reports whether Charged came from the response's usage.
	Measured bool
	// Err is the store's error from Settle or Cancel, if any.
	Err error
}

// CostFunc returns the cost, in integer micro-units of a currency, of usage
// u on model. At check time u is the estimate (Input and Output only); at
// settle time it is the measured usage, with its cached-input detail. It
// must be safe for concurrent use.
type CostFunc func(model string, u tokens.Usage) int64

type config struct {
	identity    func(*http.Request) Identity
	route       func(*http.Request) string
	trusted     []netip.Prefix
	peekLimit   int64
	deny        DenyFunc
	openAI      bool
	policy      bool
	logger      *slog.Logger
	unavailable int64 // Retry-After seconds on a store failure
	llm         bool
	bodyLimit   int64
	estimator   tokens.Estimator
	maxOutput   int64
	perMessage  int64
	cost        CostFunc
	injectUsage bool
	chargeHook  func(ctx context.Context, r *http.Request, c Charge)

	downshiftRewrite func(r *http.Request, to *limiter.Request) (*http.Request, error)
}

func defaultConfig() config {
	return config{
		route:       func(r *http.Request) string { return r.Pattern },
		peekLimit:   64 << 10,
		deny:        WriteRejection,
		policy:      true,
		logger:      slog.New(slog.DiscardHandler),
		unavailable: 1,
		bodyLimit:   tokens.DefaultBodyLimit,
		estimator:   tokens.Heuristic{},
		perMessage:  4,
	}
}

// WithIdentity sets the resolver that names a request's user and tenant
// (and claims for predicates); it is how the host's authentication plugs
// in. It runs on every request and must be safe for concurrent use. The
// default knows no identity.
func WithIdentity(f func(r *http.Request) Identity) Option {
	return func(c *config) { c.identity = f }
}

// WithRoute sets the function that names a request's route dimension. The
// default is r.Pattern, set when the middleware runs inside an
// http.ServeMux handler, else empty (no route).
func WithRoute(f func(r *http.Request) string) Option {
	return func(c *config) {
		if f != nil {
			c.route = f
		}
	}
}

// WithTrustedProxies sets the proxies whose X-Forwarded-For and Forwarded
// headers are believed. The client IP is the right-most hop that is not in
// a trusted prefix, walking from the peer address leftwards. With no
// trusted proxies (the default) the headers are ignored and the client IP
// is the peer address.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(c *config) {
		c.trusted = slices.Clone(prefixes)
		for i, p := range c.trusted {
			c.trusted[i] = p.Masked()
		}
	}
}

// WithBodyPeek sets how many bytes of a JSON request body are read to find
// the model and, for MCP JSON-RPC, the tool (default 64 KiB). The body is
// forwarded byte for byte. A body longer than n is forwarded unread past
// n, and its model and tool come only from what n bytes held. 0 disables
// the peek outside LLM mode.
func WithBodyPeek(n int64) Option {
	return func(c *config) { c.peekLimit = max(n, 0) }
}

// WithDenyHandler replaces the function that answers a denied request. The
// default is WriteRejection.
func WithDenyHandler(f DenyFunc) Option {
	return func(c *config) {
		if f != nil {
			c.deny = f
		}
	}
}

// WithOpenAIHeaders adds the OpenAI-style headers that OpenAI-compatible
// SDKs read: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
// x-ratelimit-reset-requests and their -tokens twins, and retry-after-ms
// on a denial. Off by default.
func WithOpenAIHeaders() Option {
	return func(c *config) { c.openAI = true }
}

// WithoutPolicyHeader stops the RateLimit-Policy field, whose content is
// the same on every response of a rule, from being sent. RateLimit is
// still sent.
func WithoutPolicyHeader() Option {
	return func(c *config) { c.policy = false }
}

// WithLogger sets the logger for rejections and settlements; the default
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithLLM turns on LLM mode: the request body is read (up to the body
// limit, see WithBodyLimit) to estimate its input tokens and output cap,
// the estimate is reserved, and the response streams through a usage
// meter; the reservation is settled with the measured usage after the
// last byte. See the package documentation for the charging rules.
func WithLLM() Option {
	return func(c *config) { c.llm = true }
}

// WithBodyLimit sets how many request-body bytes LLM mode reads to
// estimate a request (default tokens.DefaultBodyLimit, 1 MiB). A longer
// body is estimated from its length (tokens.EstimateFromLength).
func WithBodyLimit(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.bodyLimit = n
		}
	}
}

// WithEstimator sets the token estimator of LLM mode (default
// tokens.Heuristic).
func WithEstimator(e tokens.Estimator) Option {
	return func(c *config) {
		if e != nil {
			c.estimator = e
		}
	}
}

// WithDefaultMaxOutput sets the output tokens reserved for a request that
// names no output cap (default 0: only its input is reserved, and token
// rules are corrected at settle time).
func WithDefaultMaxOutput(n int64) Option {
	return func(c *config) { c.maxOutput = max(n, 0) }
}

// WithCost sets the function that prices usage for Cost rules; without it
// (or WithPriceTable) Cost rules are charged 0.
func WithCost(f CostFunc) Option {
	return func(c *config) { c.cost = f }
}

// WithPriceTable prices usage for Cost rules with t. A model the table
// does not know is priced 0 and logged at Warn: reject unknown models with
// a guard rule where that matters.
func WithPriceTable(t *tokens.PriceTable) Option {
	return func(c *config) {
		if t == nil {
			return
		}
		c.cost = func(model string, u tokens.Usage) int64 {
			v, err := t.Cost(model, u)
			if err != nil {
				c.logger.Warn("tollgate: no price for model", slog.String("model", model))
				return 0
			}
			return v
		}
	}
}

// WithUsageInjection makes LLM mode add "stream_options":
// {"include_usage": true} to OpenAI chat completion requests that stream
// without it, so that the stream reports usage, and remove the extra usage
// chunk from the response the client sees. The rewritten request body is
// no longer byte-identical; every other body is.
func WithUsageInjection() Option {
	return func(c *config) { c.injectUsage = true }
}

// WithChargeHook sets a function called after every LLM-mode request is
// settled or cancelled, on the request's goroutine. Use it to count
// UsageMissing responses or export per-request usage.
func WithChargeHook(f func(ctx context.Context, r *http.Request, c Charge)) Option {
	return func(c *config) { c.chargeHook = f }
}

// WithDownshiftRewrite replaces how Handler makes a request that the
// limiter downshifted (limiter.WithDownshift) ask for the cheaper request:
// f returns the request to forward to next in place of r, which is the
// request Handler would forward (its Body replays what was read and the
// rest of the stream); to is Decision.Downshifted. f must not modify r or
// its Header; return a copy (a shallow copy with a new Body, or r.Clone).
// An error, or a nil request, means the rewrite could not be applied: the
// request is refused as described in the package documentation and never
// reaches next. f is called for every downshifted request, even when the
// model did not change, on the request's goroutine.
//
// The default rewrites the top-level "model" member of a JSON body and a
// Gemini-style /models/{model} path segment.
func WithDownshiftRewrite(f func(r *http.Request, to *limiter.Request) (*http.Request, error)) Option {
	return func(c *config) { c.downshiftRewrite = f }
}
