package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/policy"
)

// Errors of the admin API.
var (
	// ErrNoAuthorizer is returned by New without an Authorizer: there is
	// no open admin API.
	ErrNoAuthorizer = errors.New("admin: an authorizer is required")
	// ErrNoLimiter is returned by New without a Limiter.
	ErrNoLimiter = errors.New("admin: a limiter is required")
	// ErrForbidden, wrapped by an Authorizer's error, answers 403 (the
	// caller is known but may not do this) instead of 401.
	ErrForbidden = errors.New("admin: forbidden")
	// ErrUnauthenticated is what BearerToken returns for a request without
	// the right token.
	ErrUnauthenticated = errors.New("admin: unauthenticated")
)

// Authorizer decides whether a request may use the admin API. It sees
// the whole request (method and path included), so it can admit reads
// and writes differently. It must be safe for concurrent use.
type Authorizer interface {
	// Authorize returns nil to admit r. An error wrapping ErrForbidden is
	// answered 403; any other error 401.
	Authorize(r *http.Request) error
}

// AuthorizerFunc adapts a function to an Authorizer.
type AuthorizerFunc func(r *http.Request) error

// Authorize calls f(r).
func (f AuthorizerFunc) Authorize(r *http.Request) error { return f(r) }

// BearerToken returns an Authorizer that admits a request whose
// Authorization header is "Bearer <token>", comparing in constant time.
// An empty token admits nothing.
func BearerToken(token string) Authorizer {
	want := []byte(token)
	return AuthorizerFunc(func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			return ErrUnauthenticated
		}
		return nil
	})
}

// Option configures a Handler.
type Option func(*config)

type config struct {
	reloader *policy.Reloader
	ledger   *ledger.Ledger
	ping     func(context.Context) error
	logger   *slog.Logger
	now      func() time.Time
}

// WithReloader sets the policy.Reloader that PUT /rules applies documents
// through, so that its reload hook and counters see them. The default is
// a Reloader of the limiter with no options.
func WithReloader(r *policy.Reloader) Option {
	return func(c *config) { c.reloader = r }
}

// WithLedger sets the usage ledger that /usage and /usage/export read.
// Without it those routes answer 404.
func WithLedger(l *ledger.Ledger) Option {
	return func(c *config) { c.ledger = l }
}

// WithHealthCheck sets the function /health calls to tell whether the
// store is reachable. The default is the ledger's Ping when there is a
// ledger; otherwise /health reports the store as "unknown".
func WithHealthCheck(f func(context.Context) error) Option {
	return func(c *config) { c.ping = f }
}

// WithLogger sets the logger for rule changes, resets and failed exports;
// the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithClock makes the handler read time from now, for the "current" and
// "previous" usage periods; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// Handler is the admin API, an http.Handler. It is safe for concurrent
// use. Mount it under a prefix with http.StripPrefix.
type Handler struct {
	lim  *limiter.Limiter
	auth Authorizer
	cfg  config
	mux  *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// New returns the admin API of l. auth is required: every request,
// unknown routes included, is authorized first.
func New(l *limiter.Limiter, auth Authorizer, opts ...Option) (*Handler, error) {
	if l == nil {
		return nil, ErrNoLimiter
	}
	if auth == nil {
		return nil, ErrNoAuthorizer
	}
	if f, ok := auth.(AuthorizerFunc); ok && f == nil {
		return nil, ErrNoAuthorizer
	}
	cfg := config{logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.reloader == nil {
		cfg.reloader = policy.NewReloader(l)
	}
	if cfg.ping == nil && cfg.ledger != nil {
		cfg.ping = cfg.ledger.Ping
	}
	h := &Handler{lim: l, auth: auth, cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /rules", h.listRules)
	h.mux.HandleFunc("PUT /rules", h.replaceRules)
	h.mux.HandleFunc("GET /rules/{name}", h.getRule)
	h.mux.HandleFunc("PUT /rules/{name}/mode", h.setMode)
	h.mux.HandleFunc("GET /keys", h.inspectKey)
	h.mux.HandleFunc("DELETE /keys", h.resetKey)
	h.mux.HandleFunc("GET /usage", h.usage)
	h.mux.HandleFunc("GET /usage/export", h.export)
	h.mux.HandleFunc("GET /health", h.health)
	return h, nil
}

// ServeHTTP authorizes r and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.auth.Authorize(r); err != nil {
		if errors.Is(err, ErrForbidden) {
			problem(w, http.StatusForbidden, "this caller may not do this")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
		problem(w, http.StatusUnauthorized, "authorization required")
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// Answer unknown routes and methods as problems, not text.
		status := http.StatusNotFound
		if h.methodMismatch(r) {
			status = http.StatusMethodNotAllowed
		}
		problem(w, status, "no such route: "+r.Method+" "+r.URL.Path)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// methodMismatch reports whether r's path is a route under another method.
func (h *Handler) methodMismatch(r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := h.mux.Handler(probe); p != "" {
			return true
		}
	}
	return false
}

// healthTimeout bounds the store check of /health.
const healthTimeout = 2 * time.Second

// health answers whether the store is reachable and the circuit closed.
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	type report struct {
		Status      string `json:"status"`
		Store       string `json:"store"`
		StoreError  string `json:"store_error,omitempty"`
		CircuitOpen bool   `json:"circuit_open"`
		Rules       int    `json:"rules"`
	}
	rep := report{Status: "ok", Store: "unknown", CircuitOpen: h.lim.CircuitOpen(), Rules: len(h.lim.Rules())}
	if h.cfg.ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		err := h.cfg.ping(ctx)
		cancel()
		if err != nil {
			rep.Store, rep.StoreError = "unreachable", err.Error()
		} else {
			rep.Store = "ok"
		}
	}
	status := http.StatusOK
	if rep.Store == "unreachable" || rep.CircuitOpen {
		rep.Status, status = "unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}
