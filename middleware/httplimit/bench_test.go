package httplimit_test

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
	"github.com/tollgate-go/tollgate/store/memory"
)

// discardWriter is a ResponseWriter that keeps nothing, so that a
// benchmark measures the handler, not a recorder.
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

// keyedRequests returns n requests with distinct API keys.
func keyedRequests(n int, method, target string, body []byte) []*http.Request {
	rs := make([]*http.Request, n)
	for i := range rs {
		rs[i] = httptest.NewRequest(method, target, nil)
		rs[i].Header.Set("Authorization", "Bearer sk-bench-"+strconv.Itoa(i))
		rs[i].RemoteAddr = "192.0.2.1:1234"
		if body != nil {
			rs[i].Header.Set("Content-Type", "application/json")
		}
	}
	return rs
}

// BenchmarkHandler compares a bare handler with the same handler behind
// the middleware (memory store, one per-key rule that always admits) in
// the same run: the difference is the middleware's cost per request.
func BenchmarkHandler(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	// A window that outlives the benchmark: 1024 keys stay live in the
	// store, as active keys do, instead of being evicted and re-inserted.
	rule := limiter.Rule{Name: "per-key", Algorithm: algorithms.FixedWindow, Limit: 1 << 40, Period: time.Hour,
		By: []dimensions.Dimension{dimensions.APIKey}}
	l, err := limiter.New(memory.New(), []limiter.Rule{rule})
	if err != nil {
		b.Fatal(err)
	}
	reqs := keyedRequests(1024, "GET", "/v1/models", nil)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", ok},
		{"limited", httplimit.New(l).Handler(ok)},
		{"limited+openai-headers", httplimit.New(l, httplimit.WithOpenAIHeaders()).Handler(ok)},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w.reset()
				c.h.ServeHTTP(w, reqs[i&1023])
				i++
			}
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}

// BenchmarkLLM compares an upstream stand-in that streams a 4 KB SSE
// response (26 events, flushed one by one) with the same behind the
// middleware in LLM mode: estimate, reserve, meter the stream, settle.
func BenchmarkLLM(b *testing.B) {
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
		f := w.(http.Flusher)
		for _, ev := range events {
			w.Write(ev)
			f.Flush()
		}
	})
	rules := []limiter.Rule{{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: 1 << 40, Period: time.Hour,
		Unit: limiter.Tokens, By: []dimensions.Dimension{dimensions.APIKey}}}
	l, err := limiter.New(memory.New(), rules)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(chatBody)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", stream},
		{"llm", httplimit.New(l, httplimit.WithLLM()).Handler(stream)},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			r := keyedRequests(1, "POST", "/v1/chat/completions", body)[0]
			rd := bytes.NewReader(body)
			b.SetBytes(int64(len(sse)))
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				rd.Reset(body)
				r.Body = readCloser{rd}
				r.ContentLength = int64(len(body))
				c.h.ServeHTTP(w, r)
			}
			if w.status != 0 && w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
