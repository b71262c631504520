package httplimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate-go/tollgate/limiter"
)

// hDownshifted is the response header that names a downshift.
const hDownshifted = "X-Tollgate-Downshifted"

// ErrModelNotFound is the error of the default downshift rewrite when the
// checked model is neither the value of a top-level "model" member in the
// part of the body that was read nor a /models/{model} path segment.
var ErrModelNotFound = errors.New("httplimit: the request names its model nowhere it can be rewritten")

// DownshiftError reports that a request the limiter admitted only on a
// cheaper model (limiter.WithDownshift) could not be rewritten to ask for
// that model. Handler answers it as a denial whose Decision.Limiting.Err
// is the *DownshiftError: with WriteRejection, 503 and a problem+json body.
type DownshiftError struct {
	// From is the model the request asked for; To the one the budget
	// admits.
	From, To string
	// Err is why the rewrite failed: ErrModelNotFound, or the error of the
	// WithDownshiftRewrite function.
	Err error
}

// Error returns the models and the cause, for logs; WriteRejection shows
// the client a detail of its own instead.
func (e *DownshiftError) Error() string {
	return "httplimit: cannot downshift from " + strconv.Quote(e.From) + " to " + strconv.Quote(e.To) + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *DownshiftError) Unwrap() error { return e.Err }

// StatusCode returns 503: the gateway, not the client, failed to apply its
// own downshift (see applyDownshift).
func (e *DownshiftError) StatusCode() int { return http.StatusServiceUnavailable }

// served returns the request the decision admits: the downshifted one when
// the limiter rewrote it, else what was checked.
func (res *Result) served() *limiter.Request {
	if res.Decision.Downshifted != nil {
		return res.Decision.Downshifted
	}
	return &res.Request
}

// applyDownshift returns the request to forward in place of fwd when the
// limiter admitted res only as its downshifted rewrite: fwd rewritten (by
// WithDownshiftRewrite, or rewriteModel) to ask for the downshifted model.
// body and complete are what Handler read of fwd's body.
//
// A rewrite to another model is logged at Info and named in the response
// header X-Tollgate-Downshifted ("gpt-4o -> gpt-4o-mini"), set in h.
func (m *Middleware) applyDownshift(h http.Header, r, fwd *http.Request, res *Result, body []byte, complete bool) (*http.Request, error) {
	from, to := res.Request.Model, res.Decision.Downshifted.Model
	var (
		f   *http.Request
		err error
	)
	switch {
	case m.cfg.downshiftRewrite != nil:
		f, err = m.cfg.downshiftRewrite(fwd, res.Decision.Downshifted)
		if err == nil && f == nil {
			err = errors.New("httplimit: the downshift rewrite returned no request")
		}
	case from == to:
		return fwd, nil // the hook changed the estimate only: nothing to rewrite
	default:
		f, err = rewriteModel(r, fwd, body, complete, from, to)
	}
	if err != nil {
		return nil, &DownshiftError{From: from, To: to, Err: err}
	}
	if from != to {
		if m.cfg.logger.Enabled(r.Context(), slog.LevelInfo) {
			m.cfg.logger.LogAttrs(r.Context(), slog.LevelInfo, "tollgate: request downshifted",
				slog.String("user", res.Request.User),
				slog.String("tenant", res.Request.Tenant),
				slog.String("from", from),
				slog.String("to", to))
		}
		if v := from + " -> " + to; validHeaderValue(v) {
			h.Set(hDownshifted, v)
		}
	}
	return f, nil
}

// refuseDownshift answers a request whose downshift could not be applied.
//
// Forwarding it unchanged would serve the expensive model on the cheap
// model's charge, so nothing is forwarded and the reservation is given
// back. The answer is 503, not the budget's 429: the limiter replaced the
// original denial with the downshifted allowance (and Peek cannot rebuild
// it: it charges no cost), so a 429 would carry an invented Retry-After;
// and the failure is the gateway's (its hook picked a model the request
// cannot be made to carry), which monitoring should see as a server error.
// The detail names the admitted model, so a client can ask for it itself.
func (m *Middleware) refuseDownshift(w http.ResponseWriter, r *http.Request, res *Result, err error) {
	ctx := context.WithoutCancel(r.Context())
	cerr := res.Decision.Reservation.Cancel(ctx)
	attrs := []slog.Attr{
		slog.String("user", res.Request.User),
		slog.String("tenant", res.Request.Tenant),
		slog.Any("error", err),
	}
	if cerr != nil {
		attrs = append(attrs, slog.Any("cancel_error", cerr))
	}
	m.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "tollgate: downshift not applied", attrs...)
	refused := Result{Request: res.Request, LLM: res.LLM}
	refused.Decision.Limiting.Err = err
	m.reject(w, r, &refused)
}

// rewriteModel is the default downshift rewrite: it returns a shallow
// copy of fwd whose body's top-level "model" members and whose Gemini-style
// /models/{model} path segment ask for to wherever they asked for from.
// The body is otherwise forwarded byte for byte; body is its prefix that
// Handler read (all of it when complete), and fwd.Body replays it and the
// rest.
func rewriteModel(r, fwd *http.Request, body []byte, complete bool, from, to string) (*http.Request, error) {
	spans := modelSpans(body)
	inBody := false
	for _, s := range spans {
		inBody = inBody || s.value == from
	}
	inPath := from != "" && modelFromPath(r.URL.Path) == from
	if !inBody && !inPath {
		return nil, ErrModelNotFound
	}
	f := new(http.Request)
	*f = *fwd
	if inBody {
		if err := rewriteBody(f, body, complete, spans, to); err != nil {
			return nil, err
		}
	}
	if inPath {
		u := *fwd.URL
		u.Path = replaceModelSegment(u.Path, to)
		if u.RawPath != "" {
			u.RawPath = replaceRawModelSegment(u.RawPath, from, to)
		}
		if fwd.RequestURI != "" && fwd.RequestURI == fwd.URL.RequestURI() {
			f.RequestURI = u.RequestURI()
		}
		f.URL = &u
	}
	return f, nil
}

// rewriteBody replaces every span's string value in f's body (of which
// body is the prefix read) with to, JSON-quoted, and sets f's lengths.
//
// Every top-level "model" member is rewritten, not only the one the check
// read: JSON parsers disagree on which duplicate wins.
func rewriteBody(f *http.Request, body []byte, complete bool, spans []modelSpan, to string) error {
	quoted, err := json.Marshal(to)
	if err != nil {
		return err
	}
	nb := make([]byte, 0, len(body)+len(spans)*len(quoted))
	prev := 0
	for _, s := range spans {
		nb = append(nb, body[prev:s.start]...)
		nb = append(nb, quoted...)
		prev = s.end
	}
	nb = append(nb, body[prev:]...)
	delta := int64(len(nb) - len(body))
	orig := f.Body
	if complete {
		f.Body = replay{bytes.NewReader(nb), orig}
		f.ContentLength = int64(len(nb))
	} else {
		// The replay reads the prefix from memory before the stream.
		if _, err := io.CopyN(io.Discard, orig, int64(len(body))); err != nil {
			return err
		}
		f.Body = replay{io.MultiReader(bytes.NewReader(nb), orig), orig}
		if f.ContentLength > 0 {
			f.ContentLength += delta
		}
	}
	if getBody := f.GetBody; getBody != nil {
		f.GetBody = func() (io.ReadCloser, error) {
			if complete {
				return io.NopCloser(bytes.NewReader(nb)), nil
			}
			rc, err := getBody()
			if err != nil {
				return nil, err
			}
			if _, err := io.CopyN(io.Discard, rc, int64(len(body))); err != nil {
				rc.Close()
				return nil, err
			}
			return replay{io.MultiReader(bytes.NewReader(nb), rc), rc}, nil
		}
	}
	if _, ok := f.Header["Content-Length"]; ok && f.ContentLength >= 0 {
		f.Header = f.Header.Clone()
		f.Header.Set("Content-Length", strconv.FormatInt(f.ContentLength, 10))
	}
	return nil
}

// modelSpan is where the string value of a top-level "model" member lies
// in a body: body[start:end] is the quoted string, value its content.
type modelSpan struct {
	start, end int
	value      string
}

// modelSpans returns the string values of the top-level "model" members
// of a JSON object, the key matched case-insensitively as encoding/json
// matches it. A truncated body gives the members that lie whole before
// the cut.
func modelSpans(body []byte) []modelSpan {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []modelSpan
	depth := 1
	expectKey := true
	keyEnd := -1 // after a top-level "model" key: the offset past it
	for {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		switch v := t.(type) {
		case json.Delim:
			keyEnd = -1
			if v == '{' || v == '[' {
				depth++
				continue
			}
			if depth--; depth == 0 {
				return out
			}
			expectKey = depth == 1
		case string:
			if depth != 1 {
				continue
			}
			if expectKey {
				expectKey, keyEnd = false, -1
				if strings.EqualFold(v, "model") {
					keyEnd = int(dec.InputOffset())
				}
				continue
			}
			if keyEnd >= 0 {
				// Between the key and its value lie only blanks and ':'.
				end := int(dec.InputOffset())
				start := keyEnd + bytes.IndexByte(body[keyEnd:end], '"')
				out = append(out, modelSpan{start: start, end: end, value: v})
			}
			expectKey, keyEnd = true, -1
		default:
			if depth == 1 {
				expectKey, keyEnd = true, -1
			}
		}
	}
}

// replaceModelSegment returns path with the segment after its last
// "/models/" (up to a ':' or '/') replaced by model.
func replaceModelSegment(path, model string) string {
	i := strings.LastIndex(path, "/models/")
	if i < 0 {
		return path
	}
	start := i + len("/models/")
	end := len(path)
	if j := strings.IndexAny(path[start:], ":/"); j >= 0 {
		end = start + j
	}
	return path[:start] + model + path[end:]
}

// replaceRawModelSegment is replaceModelSegment for an escaped path
// (URL.RawPath), whose model may be followed by "%3A" rather than ':'. It
// returns "" (URL.EscapedPath then encodes Path itself) when the escaped
// segment does not start with from.
func replaceRawModelSegment(raw, from, to string) string {
	i := strings.LastIndex(raw, "/models/")
	if i < 0 {
		return ""
	}
	start := i + len("/models/")
	// Walk the escaped bytes until they spell len(from) unescaped bytes.
	end, n := start, 0
	for ; end < len(raw) && n < len(from) && raw[end] != '/'; n++ {
		if raw[end] == '%' {
			end += 3
		} else {
			end++
		}
	}
	if end > len(raw) {
		return ""
	}
	if m, err := url.PathUnescape(raw[start:end]); err != nil || m != from {
		return ""
	}
	return raw[:start] + url.PathEscape(to) + raw[end:]
}

// validHeaderValue reports whether s can be sent as a header value as is:
// printable ASCII only (model names come from the client).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
