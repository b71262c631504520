package httplimit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/tokens"
)

// injectUsage returns the request to forward, and its body, with
// stream_options.include_usage added when WithUsageInjection asks for it
// and the request is an OpenAI chat completion that streams without it;
// strip reports whether it was added.
func (m *Middleware) injectUsage(r, fwd *http.Request, res *Result, body []byte, complete bool) (_ *http.Request, _ []byte, strip bool) {
	if !m.cfg.injectUsage || !complete || !res.LLM.Stream || res.LLM.IncludeUsage ||
		!strings.HasSuffix(r.URL.Path, "/chat/completions") {
		return fwd, body, false
	}
	nb, ok := injectIncludeUsage(body)
	if !ok {
		return fwd, body, false
	}
	f := new(http.Request)
	*f = *fwd
	f.Body = replay{bytes.NewReader(nb), fwd.Body}
	f.ContentLength = int64(len(nb))
	f.GetBody = nil
	if _, ok := fwd.Header["Content-Length"]; ok {
		f.Header = fwd.Header.Clone()
		f.Header.Set("Content-Length", strconv.Itoa(len(nb)))
	}
	return f, nb, true
}

// serveLLM forwards an admitted LLM-mode request and settles its
// reservation once the response is done. strip reports whether
// injectUsage added the usage chunk that the client must not see; counted,
// when not nil, counts the bytes of a body estimated from its prefix.
func (m *Middleware) serveLLM(w http.ResponseWriter, r, fwd *http.Request, next http.Handler, res *Result, strip bool, counted *countingBody) {
	mw := &meteredWriter{rw: w, path: r.URL.Path, strip: strip, body: counted}
	if r.URL.RawQuery != "" {
		mw.path += "?" + r.URL.RawQuery
	}
	defer m.settle(r, res, mw) // also when next panics (http.ErrAbortHandler)
	next.ServeHTTP(mw, fwd)
	mw.finish()
	if mw.status != 0 && mw.err == nil {
		// The client has every byte before the store is called.
		_ = mw.FlushError()
	}
}

// settle charges what the response measured, by the rules in the package
// documentation.
func (m *Middleware) settle(r *http.Request, res *Result, mw *meteredWriter) {
	ctx := context.WithoutCancel(r.Context())
	resv := res.Decision.Reservation
	served := res.served()
	c := Charge{Status: mw.status, Model: served.Model, Estimate: served.Estimate}
	if served.Model != res.Request.Model {
		c.DownshiftedFrom = res.Request.Model
	}
	var u tokens.Usage
	ok := false
	if mw.meter != nil {
		u, ok = mw.meter.Usage()
	}
	gone := r.Context().Err() != nil || mw.err != nil
	switch {
	case mw.status == 0 && !gone, mw.status == http.StatusTooManyRequests, mw.status >= 500,
		mw.status >= 400 && !ok:
		c.Outcome = Cancelled
		c.Err = resv.Cancel(ctx)
	default:
		c.Charged = c.Estimate
		if !ok && mw.body != nil {
			// No usage: charge at least what the whole body's length says,
			// not only the prefix the estimate saw.
			if in := tokens.EstimateFromLength(mw.body.n.Load()); in > c.Charged.InputTokens {
				c.Charged.InputTokens = in
				if m.cfg.cost != nil {
					c.Charged.Cost = m.cfg.cost(c.Model, tokens.Usage{Input: in, Output: c.Charged.OutputTokens,
						Total: in + c.Charged.OutputTokens})
				}
			}
		}
		if ok {
			c.Charged = limiter.Usage{InputTokens: u.Input, OutputTokens: u.Output}
			if m.cfg.cost != nil {
				c.Charged.Cost = m.cfg.cost(c.Model, u)
			}
			c.Measured = true
		}
		switch {
		case gone:
			c.Outcome = Disconnected
		case ok:
			c.Outcome = Settled
		default:
			c.Outcome = UsageMissing
		}
		c.Err = resv.Settle(ctx, c.Charged)
	}
	if m.cfg.logger.Enabled(ctx, slog.LevelInfo) {
		reserved := c.Estimate.InputTokens + c.Estimate.OutputTokens
		charged := c.Charged.InputTokens + c.Charged.OutputTokens
		attrs := []slog.Attr{
			slog.String("outcome", c.Outcome.String()),
			slog.String("user", res.Request.User),
			slog.String("model", c.Model),
			slog.Int("status", c.Status),
			slog.Int64("input_tokens", c.Charged.InputTokens),
			slog.Int64("output_tokens", c.Charged.OutputTokens),
			slog.Int64("reserved_tokens", reserved),
			slog.Int64("increment", charged-reserved),
		}
		level := slog.LevelInfo
		if c.Err != nil {
			attrs = append(attrs, slog.Any("error", c.Err))
			level = slog.LevelWarn
		}
		m.cfg.logger.LogAttrs(ctx, level, "tollgate: request settled", attrs...)
	}
	if m.cfg.chargeHook != nil {
		m.cfg.chargeHook(ctx, r, c)
	}
}

// meteredWriter passes a response through unchanged (but for a stripped
// usage chunk) while a usage meter reads it. It buffers nothing but, when
// stripping, the current incomplete SSE event.
type meteredWriter struct {
	rw     http.ResponseWriter
	path   string
	status int
	meter  *tokens.Meter
	strip  bool
	held   []byte // stripping: bytes of the current, incomplete event
	err    error  // the first error writing to the client
	body   *countingBody
}

// countingBody counts the bytes read from a request body. The upstream
// may read it on another goroutine than the one that settles (a reverse
// proxy copies it concurrently), hence the atomic.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// Header returns the underlying writer's header map.
func (w *meteredWriter) Header() http.Header { return w.rw.Header() }

// WriteHeader starts the meter for the response's content type and
// encoding, and writes the header.
func (w *meteredWriter) WriteHeader(code int) {
	if w.status != 0 {
		w.rw.WriteHeader(code) // let net/http report the superfluous call
		return
	}
	if code < 200 {
		w.rw.WriteHeader(code) // informational: the final header is still to come
		return
	}
	w.status = code
	h := w.rw.Header()
	ct, enc := h.Get("Content-Type"), h.Get("Content-Encoding")
	w.meter = tokens.NewMeter(tokens.WithContentType(ct), tokens.WithContentEncoding(enc), tokens.WithPath(w.path))
	if w.strip && (code != http.StatusOK || enc != "" && enc != "identity" ||
		!strings.HasPrefix(strings.ToLower(ct), "text/event-stream")) {
		w.strip = false
	}
	if w.strip {
		h.Del("Content-Length") // the body shrinks by the stripped chunk
	}
	w.rw.WriteHeader(code)
}

// Write meters p and writes it to the client.
func (w *meteredWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.meter.Write(p)
	if w.strip {
		return w.writeStripped(p)
	}
	n, err := w.rw.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Flush sends what was written to the client.
func (w *meteredWriter) Flush() { _ = w.FlushError() }

// FlushError sends what was written to the client, returning the error of
// the underlying writer; http.ResponseController calls it.
func (w *meteredWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.rw.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	if f, ok := w.rw.(http.Flusher); ok {
		f.Flush()
		return nil
	}
	return http.NewResponseController(w.rw).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *meteredWriter) Unwrap() http.ResponseWriter { return w.rw }

// finish writes what stripping still holds (an unterminated last event).
func (w *meteredWriter) finish() {
	if w.strip && len(w.held) > 0 {
		if _, err := w.rw.Write(w.held); err != nil && w.err == nil {
			w.err = err
		}
		w.held = nil
	}
}

// writeStripped writes the complete SSE events of held+p except the usage
// chunk that injection added, and holds the incomplete rest.
func (w *meteredWriter) writeStripped(p []byte) (int, error) {
	w.held = append(w.held, p...)
	out := w.held
	start := 0
	for {
		end := eventEnd(out[start:])
		if end < 0 {
			break
		}
		ev := out[start : start+end]
		if !isUsageChunk(ev) {
			if _, err := w.rw.Write(ev); err != nil {
				if w.err == nil {
					w.err = err
				}
				return 0, err
			}
		}
		start += end
	}
	w.held = append(w.held[:0], out[start:]...)
	return len(p), nil
}

// eventEnd returns the length of the first complete SSE event in b,
// including its blank-line terminator, or -1.
func eventEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' && b[i] != '\r' {
			continue
		}
		// a line ends at i; the event ends if the next line is empty
		j := i + 1
		if b[i] == '\r' && j < len(b) && b[j] == '\n' {
			j++
		}
		if j < len(b) && (b[j] == '\n' || b[j] == '\r') {
			k := j + 1
			if b[j] == '\r' {
				if k >= len(b) {
					return -1 // a CR that may be followed by LF
				}
				if b[k] == '\n' {
					k++
				}
			}
			return k
		}
		if b[i] == '\r' && j == len(b) {
			return -1
		}
	}
	return -1
}

// isUsageChunk reports whether an SSE event is OpenAI's extra usage chunk:
// a chat.completion.chunk with no choices and a usage object.
func isUsageChunk(ev []byte) bool {
	if !bytes.Contains(ev, []byte(`"usage"`)) {
		return false
	}
	var data []byte
	for line := range bytes.Lines(ev) {
		line = bytes.TrimRight(line, "\r\n")
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
		}
	}
	var c struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   json.RawMessage   `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil {
		return false
	}
	u := bytes.TrimSpace(c.Usage)
	return c.Choices != nil && len(c.Choices) == 0 && len(u) > 0 && u[0] == '{'
}

// injectIncludeUsage returns body with stream_options.include_usage set to
// true. A body without stream_options gets the member spliced in after its
// opening brace, so the rest stays byte-identical.
func injectIncludeUsage(body []byte) ([]byte, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil, false
	}
	so, has := top["stream_options"]
	if !has || bytes.Equal(bytes.TrimSpace(so), []byte("null")) {
		if has {
			delete(top, "stream_options")
		} else {
			i := bytes.IndexByte(body, '{')
			rest := bytes.TrimLeft(body[i+1:], " \t\r\n")
			sep := ","
			if len(rest) > 0 && rest[0] == '}' {
				sep = ""
			}
			out := make([]byte, 0, len(body)+40)
			out = append(out, body[:i+1]...)
			out = append(out, `"stream_options":{"include_usage":true}`+sep...)
			return append(out, body[i+1:]...), true
		}
		top["stream_options"] = json.RawMessage(`{"include_usage":true}`)
	} else {
		var opts map[string]json.RawMessage
		if json.Unmarshal(so, &opts) != nil {
			return nil, false
		}
		opts["include_usage"] = json.RawMessage("true")
		b, err := json.Marshal(opts)
		if err != nil {
			return nil, false
		}
		top["stream_options"] = b
	}
	out, err := json.Marshal(top)
	return out, err == nil
}
