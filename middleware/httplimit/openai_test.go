package httplimit_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/store/memory"
)

// attempt is one request as the server saw it.
type attempt struct {
	arrived, done time.Time
	status        int
	retryAfterMs  string
	model         string
}

// attemptLog records every request that reaches the server, around the
// middleware.
type attemptLog struct {
	mu sync.Mutex
	a  []attempt
}

func (l *attemptLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := attempt{arrived: time.Now()}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		at.done, at.status = time.Now(), rec.status
		at.retryAfterMs = w.Header().Get("Retry-After-Ms")
		l.mu.Lock()
		l.a = append(l.a, at)
		l.mu.Unlock()
	})
}

func (l *attemptLog) all() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.a...)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// TestOpenAIClientHonoursRetryHeaders runs the real OpenAI Go client
// against a limited endpoint: it gets a 429 with retry-after-ms, waits at
// least that long, and its retry succeeds.
func TestOpenAIClientHonoursRetryHeaders(t *testing.T) {
	completion := fixture(t, "openai_chat.json")
	rules := []limiter.Rule{
		{Name: "blocked-model", Limit: 0, Period: time.Minute, When: limiter.Equal(dimensions.Model, "blocked")},
		// One request per 2s per key, no burst: a second request at once
		// waits up to 2s (a margin wide enough for a loaded machine).
		{Name: "per-key", Algorithm: algorithms.GCRA, Limit: 1, Period: 2 * time.Second,
			By: []dimensions.Dimension{dimensions.APIKey}},
	}
	l, err := limiter.New(memory.New(), rules) // the real clock: the client really waits
	if err != nil {
		t.Fatal(err)
	}
	var log attemptLog
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(completion)
	})
	mw := httplimit.New(l, httplimit.WithOpenAIHeaders(), httplimit.WithLLM())
	srv := httptest.NewServer(log.wrap(mw.Handler(upstream)))
	defer srv.Close()

	client := openai.NewClient(
		option.WithBaseURL(srv.URL+"/v1/"),
		option.WithAPIKey("sk-test"),
		option.WithMaxRetries(2),
	)
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
	}
	for i := range 2 {
		got, err := client.Chat.Completions.New(t.Context(), params)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got.Usage.CompletionTokens == 0 {
			t.Errorf("call %d: no usage decoded", i)
		}
	}
	a := log.all()
	if len(a) != 3 || a[0].status != 200 || a[1].status != 429 || a[2].status != 200 {
		t.Fatalf("attempts %+v, want 200, 429, then a retried 200", a)
	}
	ms, err := strconv.Atoi(a[1].retryAfterMs)
	if err != nil || ms < 1 || ms > 2000 {
		t.Fatalf("retry-after-ms %q, want 1..2000", a[1].retryAfterMs)
	}
	// The client slept what the header said before trying again. (A lower
	// bound, which holds however slow the machine is.)
	if waited := a[2].arrived.Sub(a[1].done); waited < time.Duration(ms)*time.Millisecond {
		t.Errorf("client retried after %v, before the %dms it was told", waited, ms)
	}

	// A request that can never pass says x-should-retry: false, and the
	// client gives up at once.
	params.Model = "blocked"
	_, err = client.Chat.Completions.New(t.Context(), params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
		t.Fatalf("blocked model: %v, want a 429 API error", err)
	}
	if n := len(log.all()); n != 4 {
		t.Errorf("blocked model: %d attempts in all, want 4 (no retry)", n)
	}
}

// handlerTransport serves client requests with a handler in the same
// goroutine, so that a synctest bubble holds the client, the middleware
// and the server.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// TestOpenAIClientWaitsExactly runs the OpenAI client in a synctest
// bubble, where its sleep is fake time: after a 429 it waits exactly the
// retry-after-ms it was sent, and its retry is admitted.
func TestOpenAIClientWaitsExactly(t *testing.T) {
	completion := fixture(t, "openai_chat.json")
	synctest.Test(t, func(t *testing.T) {
		rules := []limiter.Rule{{Name: "per-key", Algorithm: algorithms.GCRA, Limit: 1, Period: 10 * time.Second,
			By: []dimensions.Dimension{dimensions.APIKey}}}
		l, err := limiter.New(memory.New(), rules)
		if err != nil {
			t.Fatal(err)
		}
		var log attemptLog
		h := log.wrap(httplimit.New(l, httplimit.WithOpenAIHeaders()).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(completion)
		})))
		client := openai.NewClient(
			option.WithBaseURL("http://llm.test/v1/"),
			option.WithAPIKey("sk-test"),
			option.WithMaxRetries(1),
			option.WithHTTPClient(&http.Client{Transport: handlerTransport{h}}),
		)
		params := openai.ChatCompletionNewParams{
			Model:    "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		}
		for i := range 2 {
			if _, err := client.Chat.Completions.New(t.Context(), params); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		a := log.all()
		if len(a) != 3 || a[1].status != 429 || a[1].retryAfterMs != "10000" || a[2].status != 200 {
			t.Fatalf("attempts %+v, want 200, 429 (retry-after-ms 10000), 200", a)
		}
		if waited := a[2].arrived.Sub(a[1].done); waited != 10*time.Second {
			t.Errorf("client waited %v, want exactly the 10s it was told", waited)
		}
	})
}
