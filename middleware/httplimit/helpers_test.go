package httplimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newLimiter returns a limiter over s (a memory store when nil) with the
// given rules and a fake clock.
func newLimiter(t testing.TB, s store.Store, rules []limiter.Rule, opts ...limiter.Option) (*limiter.Limiter, *fakeClock) {
	t.Helper()
	if s == nil {
		s = memory.New()
	}
	clk := newFakeClock()
	l, err := limiter.New(s, rules, append([]limiter.Option{limiter.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// do serves one request through h and returns the recorded response.
func do(h http.Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// logBuffer is a concurrency-safe buffer for a JSON slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, nil))
}

// okHandler counts calls and answers 200.
type okHandler struct {
	mu    sync.Mutex
	calls int
	last  *http.Request
	body  []byte
}

func (h *okHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	h.mu.Lock()
	h.calls++
	h.last = r
	h.body = buf.Bytes()
	h.mu.Unlock()
	w.Write([]byte("ok"))
}

func (h *okHandler) Calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

var _ = context.Background
