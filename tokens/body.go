package tokens

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultBodyLimit is the default number of request-body bytes ReadBody
// reads (1 MiB).
const DefaultBodyLimit = 1 << 20

// BodyOption configures ReadBody.
type BodyOption func(*bodyConfig)

type bodyConfig struct {
	limit  int64
	reject bool
}

// WithBodyLimit sets how many bytes ReadBody reads at most (default
// DefaultBodyLimit). Values below 1 mean the default.
func WithBodyLimit(n int64) BodyOption { return func(c *bodyConfig) { c.limit = n } }

// WithRejectOverLimit makes ReadBody return ErrBodyTooLarge for a body
// longer than the limit, instead of leaving the caller to estimate it from
// its length.
func WithRejectOverLimit() BodyOption { return func(c *bodyConfig) { c.reject = true } }

// Body is the prefix of a request body read by ReadBody.
type Body struct {
	// Prefix holds the bytes read: the whole body when Complete, else the
	// first limit bytes. Callers must not modify it.
	Prefix []byte
	// Complete reports that Prefix is the whole body.
	Complete bool
	// Length is the body length in bytes: len(Prefix) when Complete, the
	// declared Content-Length when known, else -1.
	Length int64
	// Path is the request path and query, passed to EstimateRequest.
	Path string
}

// smallBody is the first step of ReadBody's buffer growth.
const smallBody = 64 << 10

// ReadBody reads at most the limit from r and returns what it read, plus a
// reader that replays the body byte for byte (the bytes read, then the rest
// of r) for the upstream; closing it closes r. contentLength is the declared
// length, or -1 when unknown.
//
// When the body is longer than the limit, ReadBody returns a Body that is
// not Complete; with WithRejectOverLimit it returns ErrBodyTooLarge instead
// (the replay reader is still valid, so the caller may drain or close it).
// A body whose declared length is over the limit is rejected before any
// read. A read error other than io.EOF is returned wrapped; the replay
// reader then yields the bytes read and the same error.
func ReadBody(r io.ReadCloser, contentLength int64, path string, opts ...BodyOption) (Body, io.ReadCloser, error) {
	cfg := bodyConfig{limit: DefaultBodyLimit}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.limit < 1 {
		cfg.limit = DefaultBodyLimit
	}
	b := Body{Length: -1, Path: path}
	if contentLength >= 0 {
		b.Length = contentLength
	}
	if r == nil {
		r = io.NopCloser(bytes.NewReader(nil))
	}
	if cfg.reject && contentLength > cfg.limit {
		return b, r, ErrBodyTooLarge
	}
	buf := make([]byte, 0, min(cfg.limit+1, max(contentLength+1, 512)))
	var err error
	for zeros := 0; int64(len(buf)) <= cfg.limit; {
		if len(buf) == cap(buf) {
			// Grow in at most two steps, to 64 KiB and then straight to
			// limit+1 bytes: a body of unknown or wrong length costs the
			// cap plus 64 KiB of garbage, where doubling left up to twice
			// the cap behind until the next collection.
			size := int(cfg.limit) + 1
			if cap(buf) < smallBody {
				size = min(size, smallBody)
			}
			nb := make([]byte, len(buf), size)
			copy(nb, buf)
			buf = nb
		}
		want := min(int64(cap(buf)), cfg.limit+1)
		var n int
		n, err = r.Read(buf[len(buf):want])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
		if zeros = zeros + 1; n > 0 {
			zeros = 0
		} else if zeros > 100 {
			err = io.ErrNoProgress
			break
		}
	}
	replay := &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r), c: r}
	switch {
	case errors.Is(err, io.EOF):
		b.Prefix, b.Complete, b.Length = buf, true, int64(len(buf))
		replay.Reader = bytes.NewReader(buf)
		return b, replay, nil
	case err != nil:
		b.Prefix = buf
		replay.Reader = io.MultiReader(bytes.NewReader(buf), errReader{err})
		return b, replay, fmt.Errorf("tokens: reading request body: %w", err)
	}
	b.Prefix = buf[:cfg.limit]
	if b.Length < int64(len(buf)) {
		b.Length = -1 // the declared length was wrong or absent
	}
	if cfg.reject {
		return b, replay, ErrBodyTooLarge
	}
	return b, replay, nil
}

type replayBody struct {
	io.Reader
	c io.Closer
}

func (r *replayBody) Close() error { return r.c.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Estimate estimates the request: from its content when the body is
// Complete, else from its length (Length, or the prefix length as a lower
// bound when unknown), with the model, stream flag and output cap still read
// from the members that the prefix holds whole.
func (b Body) Estimate(e Estimator) (Request, error) {
	if b.Complete {
		return EstimateRequest(b.Path, b.Prefix, e)
	}
	n := b.Length
	if n < int64(len(b.Prefix)) {
		n = int64(len(b.Prefix))
	}
	r := prefixRequest(b.Path, b.Prefix)
	r.Input = EstimateFromLength(n)
	r.FromLength = true
	return r, nil
}

var prefixKeys = []string{"model", "stream", "max_completion_tokens", "max_tokens", "max_output_tokens"}

// prefixRequest reads the top-level scalar members found whole in a
// truncated body.
func prefixRequest(path string, prefix []byte) Request {
	var r Request
	var vals [5][]byte
	s := newJSONScanner(prefixKeys, 4<<10, nil)
	s.onDoc = func([][]byte, []bool) {}
	s.write(prefix)
	for i := range s.vals {
		if s.got[i] && !s.trunc[i] && (i != s.capture) {
			vals[i] = bytes.Clone(s.vals[i])
		}
	}
	if m, ok := jsonString(vals[0]); ok {
		r.Model = m
	} else {
		r.Model = ModelFromPath(path)
	}
	r.Stream = string(bytes.TrimSpace(vals[1])) == "true"
	for _, raw := range vals[2:] {
		if v, ok, _ := parseCount(raw); ok {
			r.MaxOutput = v
			break
		}
	}
	return r
}
