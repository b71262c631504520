package benchmarks

// Issue 6's budgets: what the net/http middleware adds to a bare handler,
// with the memory store and one rule, and in LLM mode on a 4 KB SSE stream.

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks measure handlers, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) Flush()                      {}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status = 0
}

// requestsWithKeys returns n requests with distinct API keys.
func requestsWithKeys(n int, method, target string) []*http.Request {
	rs := make([]*http.Request, n)
	for i := range rs {
		rs[i] = httptest.NewRequest(method, target, nil)
		rs[i].Header.Set("Authorization", "Bearer sk-bench-"+strconv.Itoa(i))
		rs[i].RemoteAddr = "192.0.2.1:1234"
	}
	return rs
}

// serve runs h over reqs in a cycle and checks the last status.
func serve(b *testing.B, h http.Handler, reqs []*http.Request) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		i++
	}
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
}

// BenchmarkMiddleware: a bare handler, and the same behind the middleware
// with one per-API-key rule on the memory store, over 1,024 keys.
func BenchmarkMiddleware(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	reqs := requestsWithKeys(1024, "GET", "/v1/models")
	b.Run("bare", func(b *testing.B) { serve(b, ok, reqs) })
	b.Run("limited", func(b *testing.B) {
		l := newLimiter(b, []limiter.Rule{{Name: "per-key", Algorithm: algorithms.TokenBucket, Limit: huge, Period: time.Second,
			By: by(dimensions.APIKey)}})
		serve(b, httplimit.New(l).Handler(ok), reqs)
	})
}

// chatBody is a streaming chat request.
const chatBody = `{"model":"gpt-4o-mini","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"Say hello to the billing team."}]}`

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// BenchmarkMiddlewareLLM: an upstream stand-in that reads the request and
// streams a 4 KB SSE response with usage, one flushed event at a time; and
// the same behind the middleware in LLM mode, with a per-key token rule:
// estimate, reserve, meter the stream, settle.
func BenchmarkMiddlewareLLM(b *testing.B) {
	sse := fixture(b, "openai_chat_stream.sse")
	var events [][]byte
	for ev := range bytes.SplitAfterSeq(sse, []byte("\n\n")) {
		if len(ev) > 0 {
			events = append(events, ev)
		}
	}
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf [512]byte
		for {
			if _, err := r.Body.Read(buf[:]); err != nil {
				break
			}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		for _, ev := range events {
			w.Write(ev)
			f.Flush()
		}
	})
	body := []byte(chatBody)
	run := func(b *testing.B, h http.Handler) {
		w := &discardWriter{h: http.Header{}}
		r := requestsWithKeys(1, "POST", "/v1/chat/completions")[0]
		r.Header.Set("Content-Type", "application/json")
		rd := bytes.NewReader(body)
		b.SetBytes(int64(len(sse)))
		b.ReportAllocs()
		for b.Loop() {
			w.reset()
			rd.Reset(body)
			r.Body = readCloser{rd}
			r.ContentLength = int64(len(body))
			h.ServeHTTP(w, r)
		}
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, stream) })
	b.Run("llm", func(b *testing.B) {
		l := newLimiter(b, []limiter.Rule{{Name: "tpm", Algorithm: algorithms.TokenBucket, Limit: huge, Period: time.Minute,
			Unit: limiter.Tokens, By: by(dimensions.APIKey)}})
		run(b, httplimit.New(l, httplimit.WithLLM()).Handler(stream))
	})
}
