package httplimit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/tokens"
)

// Middleware limits HTTP requests with a limiter.Limiter. Create it with
// New. It is safe for concurrent use.
type Middleware struct {
	l        *limiter.Limiter
	cfg      config
	policies policyCache
}

// Result is the outcome of checking one request.
type Result struct {
	// Decision is the limiter's decision. When it holds a Reservation,
	// whoever called Check must Settle or Cancel it (Handler does).
	Decision limiter.Decision
	// Request is what was checked: the request's dimensions and, in LLM
	// mode, its estimate.
	Request limiter.Request
	// LLM is the request's LLM estimate in LLM mode (zero otherwise).
	LLM tokens.Request
}

// New returns a Middleware that checks requests with l.
func New(l *limiter.Limiter, opts ...Option) *Middleware {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return &Middleware{l: l, cfg: cfg}
}

// Check extracts r's dimensions and checks them with the limiter, which
// charges the matching rules' counters as Handler would. It never
// modifies r and never reads r.Body; it reads the body only through
// r.GetBody, when that is set (as for client requests), to find the
// model, the tool and, in LLM mode, the token estimate. Handler peeks at
// the body of server requests itself.
//
// An allowed Result may hold a Reservation, which the caller must Settle
// or Cancel. When its Decision.Downshifted is set, the limiter admitted
// only that rewrite: the caller must send the rewrite's model, not r's
// (Check does not rewrite r; Handler does).
func (m *Middleware) Check(r *http.Request) Result {
	var body []byte
	complete := false
	if r.GetBody != nil && m.wantsBody(r) {
		if rc, err := r.GetBody(); err == nil {
			var replay io.ReadCloser
			body, complete, replay, _ = readPrefix(rc, r.ContentLength, m.bodyLimit())
			replay.Close()
		}
	}
	return m.check(r, body, complete)
}

// Handler returns a handler that checks every request before next serves
// it. A denied request is answered by the deny handler (WriteRejection
// unless WithDenyHandler) and never reaches next. Every checked response
// carries the rate-limit headers. The request next sees is r, or, when
// its body was peeked at, a shallow copy of r whose Body replays the same
// bytes.
//
// When the limiter admits a request only as its cheaper rewrite
// (limiter.WithDownshift sets Decision.Downshifted), next sees a copy of r
// that asks for the rewrite's model: the top-level "model" member of a
// JSON body (the rest of the body byte for byte, Content-Length adjusted)
// or the /models/{model} path segment, or whatever WithDownshiftRewrite
// makes of it; the response names the change in X-Tollgate-Downshifted,
// and the reservation is settled with the downshifted request's model and
// estimate. A request that cannot be rewritten never reaches next: its
// reservation is cancelled and the deny handler answers it as a
// *DownshiftError (WriteRejection: 503), because forwarding it would serve
// the expensive model on the cheap model's charge.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fwd := r
		var body []byte
		complete := false
		if m.wantsBody(r) {
			var replay io.ReadCloser
			body, complete, replay, _ = readPrefix(r.Body, r.ContentLength, m.bodyLimit())
			fwd = new(http.Request)
			*fwd = *r
			fwd.Body = replay
		}
		res := m.check(r, body, complete)
		strip := false
		if res.Decision.Allowed && m.cfg.llm {
			// Before the downshift, which then rewrites the injected body.
			fwd, body, strip = m.injectUsage(r, fwd, &res, body, complete)
		}
		if res.Decision.Allowed && res.Decision.Downshifted != nil {
			f, err := m.applyDownshift(w.Header(), r, fwd, &res, body, complete)
			if err != nil {
				m.refuseDownshift(w, r, &res, err)
				return
			}
			fwd = f
		}
		m.setHeaders(w.Header(), &res.Decision)
		if !res.Decision.Allowed {
			m.reject(w, r, &res)
			return
		}
		if m.cfg.llm {
			var counted *countingBody
			if body != nil && !complete && r.ContentLength <= 0 {
				// A body of unknown length past the read cap was estimated
				// from its prefix: count what the upstream reads, so that a
				// response without usage is charged for the whole body.
				counted = &countingBody{rc: fwd.Body}
				f := new(http.Request)
				*f = *fwd
				f.Body = counted
				fwd = f
			}
			m.serveLLM(w, r, fwd, next, &res, strip, counted)
			return
		}
		if res.Decision.Reservation == nil {
			next.ServeHTTP(w, fwd)
			return
		}
		defer res.Decision.Reservation.Settle(context.WithoutCancel(r.Context()), res.served().Estimate)
		next.ServeHTTP(w, fwd)
	})
}

// reject logs a denial and hands it to the deny handler.
func (m *Middleware) reject(w http.ResponseWriter, r *http.Request, res *Result) {
	d := &res.Decision
	if m.cfg.logger.Enabled(r.Context(), slog.LevelInfo) {
		rule := ""
		if d.Limiting.Rule != nil {
			rule = d.Limiting.Rule.Name
		}
		m.cfg.logger.LogAttrs(r.Context(), slog.LevelInfo, "tollgate: request rejected",
			slog.String("user", res.Request.User),
			slog.String("tenant", res.Request.Tenant),
			slog.String("rule", rule),
			slog.String("reason", reason(d)),
			slog.Int("status", Status(d)),
			slog.Duration("retry_after", d.RetryAfter))
	}
	held := new(Result) // the deny handler may keep the pointer past this frame
	*held = *res
	m.cfg.deny(w, r, held)
}

func (m *Middleware) bodyLimit() int64 {
	if m.cfg.llm {
		return m.cfg.bodyLimit
	}
	return m.cfg.peekLimit
}

// wantsBody reports whether r's body is read: a JSON body (or one without
// a Content-Type) on a method that carries one, when peeking or LLM mode
// is on.
func (m *Middleware) wantsBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || m.bodyLimit() <= 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete:
		return false
	}
	ct := r.Header["Content-Type"]
	return len(ct) == 0 || isJSON(ct[0])
}

// reqPool recycles limiter requests: Check takes a pointer, which would
// otherwise move every Result to the heap.
var reqPool = sync.Pool{New: func() any { return new(limiter.Request) }}

// check builds the limiter request of r (with its body prefix) and checks
// it.
func (m *Middleware) check(r *http.Request, body []byte, complete bool) (res Result) {
	req := reqPool.Get().(*limiter.Request)
	req.APIKey = apiKey(r.Header)
	req.ClientIP = m.clientIP(r)
	req.Method = r.Method
	req.Route = m.cfg.route(r)
	req.Header = r.Header
	if m.cfg.identity != nil {
		id := m.cfg.identity(r)
		req.User, req.Tenant, req.Identity, req.Custom = id.User, id.Tenant, id.Claims, id.Custom
	}
	// In LLM mode the estimator reads the model; only a JSON-RPC body
	// needs the peek (for its tool).
	if body != nil && (!m.cfg.llm || bytes.Contains(body, []byte(`"jsonrpc"`))) {
		peekFacts(&req.Facts, body, complete)
	}
	if req.Model == "" {
		req.Model = modelFromPath(r.URL.Path)
	}
	if m.cfg.llm {
		res.LLM = m.estimate(r, body, complete, req)
	}
	res.Decision = m.l.Check(r.Context(), req)
	res.Request = *req
	*req = limiter.Request{}
	reqPool.Put(req)
	return res
}

// estimate fills the LLM estimate of a request.
func (m *Middleware) estimate(r *http.Request, body []byte, complete bool, req *limiter.Request) tokens.Request {
	path := r.URL.Path
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	var tr tokens.Request
	switch {
	case body == nil:
		// Not read at all: no body, or not JSON (an audio upload, say).
	case complete:
		var err error
		if tr, err = tokens.EstimateRequest(path, body, m.cfg.estimator); err != nil {
			tr = tokens.Request{Input: tokens.EstimateFromLength(int64(len(body))), FromLength: true}
		}
	default:
		// Too long to read whole: estimated from its length, with the
		// model, stream flag and output cap the prefix holds.
		length := r.ContentLength
		if length <= 0 {
			length = -1
		}
		tr, _ = tokens.Body{Prefix: body, Length: length, Path: path}.Estimate(m.cfg.estimator)
	}
	if tr.Model != "" && req.Model == "" {
		req.Model = tr.Model
	}
	tr.Model = req.Model
	out := tr.MaxOutput + tr.ThinkingBudget
	if out == 0 {
		out = m.cfg.maxOutput
	}
	est := limiter.Usage{InputTokens: tr.Input + m.cfg.perMessage*int64(tr.Messages), OutputTokens: out}
	if m.cfg.cost != nil {
		est.Cost = m.cfg.cost(tr.Model, tokens.Usage{Input: est.InputTokens, Output: est.OutputTokens,
			Total: est.InputTokens + est.OutputTokens})
	}
	req.Estimate = est
	return tr
}

// readPrefix reads at most limit bytes of a body (tokens.ReadBody: the cap
// plus 64 KiB at most, whatever the declared length) and returns them,
// whether they are the whole body, and a reader that replays the body byte
// for byte.
func readPrefix(rc io.ReadCloser, contentLength, limit int64) ([]byte, bool, io.ReadCloser, error) {
	b, body, err := tokens.ReadBody(rc, contentLength, "", tokens.WithBodyLimit(limit))
	return b.Prefix, b.Complete, body, err
}

type replay struct {
	io.Reader
	c io.Closer
}

func (r replay) Close() error { return r.c.Close() }
