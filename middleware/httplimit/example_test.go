package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/store/memory"
)

func ExampleMiddleware_Handler() {
	clock := func() time.Time { return time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC) }
	l, _ := limiter.New(memory.New(), []limiter.Rule{{
		Name: "per-key", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute,
		By: []dimensions.Dimension{dimensions.APIKey},
	}}, limiter.WithClock(clock))
	h := httplimit.New(l).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	for range 3 {
		r := httptest.NewRequest("GET", "/v1/models", nil)
		r.Header.Set("Authorization", "Bearer sk-example")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"))
	}
	// Output:
	// 200 RateLimit: "per-key";r=1;t=30 Retry-After: ""
	// 200 RateLimit: "per-key";r=0;t=30 Retry-After: ""
	// 429 RateLimit: "per-key";r=0;t=30 Retry-After: "30"
}
