package httplimit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
)

// FuzzRateLimitHeaders drives random rules through the middleware and
// holds every response's rate-limit headers to the structured-fields
// grammar and to the decision: RateLimit names a rule with r and t never
// negative, RateLimit-Policy is a list whose q and w are non-negative, and
// a Retry-After is a positive integer.
func FuzzRateLimitHeaders(f *testing.F) {
	f.Add("per-key", int64(2), int64(60), uint8(1), uint8(3), true)
	f.Add("a.b:c/d_e", int64(0), int64(1), uint8(3), uint8(2), false)
	f.Add("x", int64(1<<53), int64(366*24*3600), uint8(4), uint8(1), true)
	f.Fuzz(func(t *testing.T, name string, limit, periodSeconds int64, kind, requests uint8, openAI bool) {
		name = ruleName(name)
		rule := limiter.Rule{
			Name:      name,
			Algorithm: algorithms.Kind(kind%4 + 1), // every kind but concurrency
			Limit:     max(0, min(limit, algorithms.MaxLimit)),
			Period:    time.Duration(max(1, min(periodSeconds, 366*24*3600))) * time.Second,
		}
		l, _ := newLimiter(t, nil, []limiter.Rule{rule})
		var opts []httplimit.Option
		if openAI {
			opts = append(opts, httplimit.WithOpenAIHeaders())
		}
		h := httplimit.New(l, opts...).Handler(&okHandler{})
		for range requests % 6 {
			w := do(h, "GET", "/", "", nil)
			rl, err := parseSFList(w.Header().Values("RateLimit"))
			if err != nil || len(rl) != 1 {
				t.Fatalf("RateLimit %q: %v (%d items)", w.Header().Values("RateLimit"), err, len(rl))
			}
			if rl[0].Value != name {
				t.Fatalf("RateLimit names %v, want %q", rl[0].Value, name)
			}
			for _, p := range []string{"r", "t"} {
				if v, ok := rl[0].Param(p); !ok || v.(int64) < 0 {
					t.Fatalf("RateLimit %s=%v, want a non-negative integer", p, v)
				}
			}
			pol, err := parseSFList(w.Header().Values("RateLimit-Policy"))
			if err != nil || len(pol) != 1 {
				t.Fatalf("RateLimit-Policy %q: %v", w.Header().Values("RateLimit-Policy"), err)
			}
			if q, ok := pol[0].Param("q"); !ok || q.(int64) < 0 {
				t.Fatalf("RateLimit-Policy q=%v", q)
			}
			if ra := w.Header().Get("Retry-After"); ra != "" {
				if n, err := strconv.ParseInt(ra, 10, 64); err != nil || n < 1 {
					t.Fatalf("Retry-After %q, want a positive integer", ra)
				}
			}
		}
	})
}

// ruleName maps any string to a valid rule name.
func ruleName(s string) string {
	b := make([]byte, 0, min(len(s), 128))
	for i := 0; i < len(s) && len(b) < 128; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '/' || c == '-' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "r"
	}
	return string(b)
}
