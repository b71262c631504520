package httplimit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
)

func perKeyRule(limit int64, period time.Duration) limiter.Rule {
	return limiter.Rule{
		Name: "per-key", Algorithm: algorithms.FixedWindow, Limit: limit, Period: period,
		By: []dimensions.Dimension{dimensions.APIKey},
	}
}

// rateLimitFields parses RateLimit and RateLimit-Policy strictly and
// returns the RateLimit item and the policy list.
func rateLimitFields(t *testing.T, h http.Header) (sfItem, []sfItem) {
	t.Helper()
	rl, err := parseSFList(h.Values("RateLimit"))
	if err != nil || len(rl) != 1 {
		t.Fatalf("RateLimit %q: %v (%d items)", h.Values("RateLimit"), err, len(rl))
	}
	pol, err := parseSFList(h.Values("RateLimit-Policy"))
	if err != nil || len(pol) == 0 {
		t.Fatalf("RateLimit-Policy %q: %v", h.Values("RateLimit-Policy"), err)
	}
	return rl[0], pol
}

func intParam(t *testing.T, it sfItem, key string) int64 {
	t.Helper()
	v, ok := it.Param(key)
	n, isInt := v.(int64)
	if !ok || !isInt || n < 0 {
		t.Fatalf("item %v: parameter %q = %v, want a non-negative Integer", it, key, v)
	}
	return n
}

func TestHeadersAndDefaultRejection(t *testing.T) {
	l, clk := newLimiter(t, nil, []limiter.Rule{perKeyRule(2, time.Minute)})
	next := &okHandler{}
	h := httplimit.New(l).Handler(next)
	key := map[string]string{"Authorization": "Bearer sk-test-1"}

	for i, wantR := range []int64{1, 0} {
		w := do(h, "GET", "/v1/models", "", key)
		if w.Code != 200 {
			t.Fatalf("request %d: status %d, want 200", i, w.Code)
		}
		rl, pol := rateLimitFields(t, w.Header())
		if rl.Value != "per-key" || intParam(t, rl, "r") != wantR {
			t.Errorf("request %d: RateLimit %v, want \"per-key\" r=%d", i, rl, wantR)
		}
		if tt := intParam(t, rl, "t"); tt < 1 || tt > 60 {
			t.Errorf("request %d: t=%d, want 1..60", i, tt)
		}
		if pol[0].Value != "per-key" || intParam(t, pol[0], "q") != 2 || intParam(t, pol[0], "w") != 60 {
			t.Errorf("request %d: RateLimit-Policy %v, want \"per-key\";q=2;w=60", i, pol)
		}
		if w.Header().Get("Retry-After") != "" {
			t.Errorf("request %d: Retry-After on an admitted request", i)
		}
	}
	clk.Advance(20*time.Second + 500*time.Millisecond)
	w := do(h, "GET", "/v1/models", "", key)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d, want 429", w.Code)
	}
	if next.Calls() != 2 {
		t.Errorf("next called %d times, want 2", next.Calls())
	}
	// 39.5s left in the window: Retry-After rounds up to 40.
	if got := w.Header().Get("Retry-After"); got != "40" {
		t.Errorf("Retry-After %q, want 40", got)
	}
	rl, _ := rateLimitFields(t, w.Header())
	if intParam(t, rl, "r") != 0 || intParam(t, rl, "t") != 40 {
		t.Errorf("RateLimit on denial %v, want r=0;t=40 (the Retry-After)", rl)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var prob map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil {
		t.Fatal(err)
	}
	if prob["status"] != 429.0 || prob["rule"] != "per-key" || prob["title"] != "Too Many Requests" ||
		!strings.Contains(prob["detail"].(string), "40s") {
		t.Errorf("problem %v", prob)
	}
	// Another key has its own counter.
	if w := do(h, "GET", "/", "", map[string]string{"x-api-key": "sk-other"}); w.Code != 200 {
		t.Errorf("other key: %d", w.Code)
	}
}

func TestRetryAfterRoundsUpToAtLeastOne(t *testing.T) {
	l, _ := newLimiter(t, nil, []limiter.Rule{{
		Name: "fast", Algorithm: algorithms.GCRA, Limit: 10, Period: time.Second, Burst: 1,
	}})
	h := httplimit.New(l).Handler(&okHandler{})
	do(h, "GET", "/", "", nil)
	w := do(h, "GET", "/", "", nil) // 100ms to wait
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("status %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestMultiplePoliciesAndTightest(t *testing.T) {
	rules := []limiter.Rule{
		{Name: "minute", Algorithm: algorithms.SlidingWindow, Limit: 100, Period: time.Minute},
		{Name: "day", Algorithm: algorithms.FixedWindow, Limit: 3, Calendar: limiter.Day},
		{Name: "tokens", Limit: 10000, Period: time.Minute, Unit: limiter.Tokens, Burst: 20000},
		{Name: "shadowed", Limit: 1, Period: time.Minute, Mode: limiter.Shadow},
	}
	l, _ := newLimiter(t, nil, rules)
	h := httplimit.New(l).Handler(&okHandler{})
	w := do(h, "GET", "/", "", nil)
	rl, pol := rateLimitFields(t, w.Header())
	if rl.Value != "day" || intParam(t, rl, "r") != 2 {
		t.Errorf("RateLimit %v, want the tightest, \"day\" r=2", rl)
	}
	if len(pol) != 3 {
		t.Fatalf("policies %v, want 3 (no shadow rule)", pol)
	}
	if intParam(t, pol[1], "w") != 86400 {
		t.Errorf("day policy %v, want w=86400", pol[1])
	}
	if qu, _ := pol[2].Param("qu"); qu != "tokens" || intParam(t, pol[2], "q") != 10000 || intParam(t, pol[2], "tollgate-burst") != 20000 {
		t.Errorf("token policy %v, want q=10000;qu=\"tokens\";w=60;tollgate-burst=20000", pol[2])
	}
}

func TestCustomRejection(t *testing.T) {
	r := perKeyRule(0, time.Minute)
	r.Reject = &limiter.Rejection{Status: 402, Body: []byte(`{"error":"pay up"}`),
		Headers: map[string]string{"X-Quota": "exhausted"}}
	l, _ := newLimiter(t, nil, []limiter.Rule{r})
	w := do(httplimit.New(l).Handler(&okHandler{}), "GET", "/", "", map[string]string{"api-key": "k"})
	if w.Code != 402 || w.Body.String() != `{"error":"pay up"}` || w.Header().Get("X-Quota") != "exhausted" ||
		w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q %v", w.Code, w.Body, w.Header())
	}
}

func TestStoreFailureFailClosed(t *testing.T) {
	s := newFlakyStore()
	r := perKeyRule(10, time.Minute)
	r.OnStoreError = limiter.FailDeny
	open := perKeyRule(10, time.Minute)
	open.Name = "open"
	l, _ := newLimiter(t, s, []limiter.Rule{r}, limiter.WithCircuitBreaker(0, 0))
	lo, _ := newLimiter(t, s, []limiter.Rule{open}, limiter.WithCircuitBreaker(0, 0))
	s.down.Store(true)
	key := map[string]string{"Authorization": "bearer k"}
	w := do(httplimit.New(l).Handler(&okHandler{}), "GET", "/", "", key)
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("fail closed: %d Retry-After %q, want 503 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "unavailable") {
		t.Errorf("body %q", w.Body)
	}
	if w := do(httplimit.New(lo).Handler(&okHandler{}), "GET", "/", "", key); w.Code != 200 {
		t.Errorf("fail open: %d, want 200", w.Code)
	}
}

type teapot struct{}

func (teapot) Error() string   { return "model not allowed" }
func (teapot) StatusCode() int { return http.StatusForbidden }

func TestGuardRejection(t *testing.T) {
	guard := limiter.Rule{Name: "models", Guard: func(r *limiter.Request) error {
		switch r.Model {
		case "gpt-4":
			return teapot{}
		case "o1":
			return errors.New("max_tokens over 4096")
		}
		return nil
	}}
	l, _ := newLimiter(t, nil, []limiter.Rule{guard})
	h := httplimit.New(l).Handler(&okHandler{})
	for _, c := range []struct {
		model  string
		status int
		detail string
	}{{"gpt-4", 403, "model not allowed"}, {"o1", 400, "max_tokens over 4096"}, {"gpt-4o", 200, ""}} {
		w := do(h, "POST", "/v1/chat/completions", `{"model":"`+c.model+`"}`, nil)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.detail) {
			t.Errorf("%s: %d %q, want %d with %q", c.model, w.Code, w.Body, c.status, c.detail)
		}
		if c.status != 200 && w.Header().Get("Retry-After") != "" {
			t.Errorf("%s: Retry-After on a guard rejection", c.model)
		}
	}
}

func TestGuardRejectionUsesTheRulesRejection(t *testing.T) {
	guard := limiter.Rule{
		Name:   "models",
		Guard:  func(r *limiter.Request) error { return teapot{} },
		Reject: &limiter.Rejection{Status: 404, ContentType: "application/json", Body: []byte(`{"error":"model_not_found"}`), Headers: map[string]string{"X-Why": "guard"}},
	}
	l, _ := newLimiter(t, nil, []limiter.Rule{guard})
	h := httplimit.New(l).Handler(&okHandler{})
	w := do(h, "POST", "/v1/chat/completions", `{"model":"gpt-4"}`, nil)
	if w.Code != 404 || w.Body.String() != `{"error":"model_not_found"}` || w.Header().Get("X-Why") != "guard" {
		t.Errorf("got %d %q X-Why=%q, want the rule's own 404 rejection", w.Code, w.Body, w.Header().Get("X-Why"))
	}
}

func TestDenyHandlerReplaced(t *testing.T) {
	l, _ := newLimiter(t, nil, []limiter.Rule{perKeyRule(0, time.Minute)})
	var got string
	h := httplimit.New(l, httplimit.WithDenyHandler(func(w http.ResponseWriter, r *http.Request, res *httplimit.Result) {
		got = res.Decision.Limiting.Rule.Name
		w.WriteHeader(418)
	})).Handler(&okHandler{})
	w := do(h, "GET", "/", "", map[string]string{"x-api-key": "k"})
	if w.Code != 418 || got != "per-key" {
		t.Errorf("status %d rule %q", w.Code, got)
	}
}

func TestOpenAIHeaders(t *testing.T) {
	rules := []limiter.Rule{
		{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: 2, Period: time.Minute},
		{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: 1000, Period: time.Minute, Unit: limiter.Tokens},
	}
	l, clk := newLimiter(t, nil, rules)
	h := httplimit.New(l, httplimit.WithOpenAIHeaders()).Handler(&okHandler{})
	w := do(h, "GET", "/", "", nil)
	want := map[string]string{
		"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "1m0s",
		"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "0s",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	do(h, "GET", "/", "", nil)
	clk.Advance(59*time.Second + 750*time.Millisecond)
	w = do(h, "GET", "/", "", nil)
	if w.Code != 429 || w.Header().Get("retry-after-ms") != "250" || w.Header().Get("Retry-After") != "1" ||
		w.Header().Get("x-ratelimit-reset-requests") != "250ms" {
		t.Errorf("denial: %d %v", w.Code, w.Header())
	}
}

func TestExceedsCapacityNoRetry(t *testing.T) {
	l, _ := newLimiter(t, nil, []limiter.Rule{{Name: "none", Algorithm: algorithms.FixedWindow, Limit: 0, Period: time.Minute}})
	w := do(httplimit.New(l, httplimit.WithOpenAIHeaders()).Handler(&okHandler{}), "GET", "/", "", nil)
	if w.Code != 429 || w.Header().Get("Retry-After") != "" || w.Header().Get("x-should-retry") != "false" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}

func TestAPIKeyExtraction(t *testing.T) {
	l, _ := newLimiter(t, nil, nil)
	m := httplimit.New(l)
	for _, c := range []struct {
		header map[string]string
		want   string
	}{
		{map[string]string{"Authorization": "Bearer sk-1"}, "sk-1"},
		{map[string]string{"Authorization": "bearer   sk-2 "}, "sk-2"},
		{map[string]string{"Authorization": "Basic dXNlcg=="}, ""},
		{map[string]string{"x-api-key": "sk-ant"}, "sk-ant"},
		{map[string]string{"api-key": "azure"}, "azure"},
		{map[string]string{"x-goog-api-key": "gem"}, "gem"},
		{map[string]string{"Authorization": "Bearer a", "x-api-key": "b"}, "a"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		if got := m.Check(r).Request.APIKey; got != c.want {
			t.Errorf("%v: api key %q, want %q", c.header, got, c.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	l, _ := newLimiter(t, nil, nil)
	m := httplimit.New(l, httplimit.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")))
	plain := httplimit.New(l)
	for _, c := range []struct {
		name   string
		remote string
		header map[string]string
		want   string
		plain  string
	}{
		{"no proxy", "203.0.113.7:5555", nil, "203.0.113.7", "203.0.113.7"},
		{"untrusted peer's XFF ignored", "203.0.113.7:5555", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "203.0.113.7", "203.0.113.7"},
		{"one trusted hop", "10.1.1.1:80", map[string]string{"X-Forwarded-For": "198.51.100.9"}, "198.51.100.9", "10.1.1.1"},
		{"spoofed left-most", "10.1.1.1:80", map[string]string{"X-Forwarded-For": "6.6.6.6, 198.51.100.9, 10.2.2.2"}, "198.51.100.9", "10.1.1.1"},
		{"all trusted", "10.1.1.1:80", map[string]string{"X-Forwarded-For": "10.3.3.3, 10.2.2.2"}, "10.3.3.3", "10.1.1.1"},
		{"Forwarded wins", "10.1.1.1:80", map[string]string{"Forwarded": `for=192.0.2.60;proto=http, for="[2001:db8:1::5]:4711"`, "X-Forwarded-For": "6.6.6.6"}, "192.0.2.60", "10.1.1.1"},
		{"Forwarded unknown stops", "10.1.1.1:80", map[string]string{"Forwarded": "for=unknown"}, "10.1.1.1", "10.1.1.1"},
		{"v6 peer", "[2001:db8:1::1]:443", map[string]string{"X-Forwarded-For": "2001:db8:2::7"}, "2001:db8:2::7", "2001:db8:1::1"},
		{"mapped v4", "[::ffff:10.0.0.1]:80", map[string]string{"X-Forwarded-For": "192.0.2.1"}, "192.0.2.1", "10.0.0.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		if got := m.Check(r).Request.ClientIP; got != c.want {
			t.Errorf("%s: client IP %q, want %q", c.name, got, c.want)
		}
		if got := plain.Check(r).Request.ClientIP; got != c.plain {
			t.Errorf("%s without trusted proxies: %q, want %q", c.name, got, c.plain)
		}
	}
	// Several X-Forwarded-For lines are one list.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.1.1:80"
	r.Header.Add("X-Forwarded-For", "198.51.100.1")
	r.Header.Add("X-Forwarded-For", "10.9.9.9")
	if got := m.Check(r).Request.ClientIP; got != "198.51.100.1" {
		t.Errorf("two XFF lines: %q", got)
	}
}

func TestModelToolAndIdentity(t *testing.T) {
	var seen []limiter.Request
	rule := limiter.Rule{Name: "spy", Limit: 100, Period: time.Minute, When: limiter.MatchFunc(func(r *limiter.Request) bool {
		seen = append(seen, *r)
		return true
	})}
	l, _ := newLimiter(t, nil, []limiter.Rule{rule})
	next := &okHandler{}
	h := httplimit.New(l, httplimit.WithBodyPeek(200), httplimit.WithIdentity(func(r *http.Request) httplimit.Identity {
		return httplimit.Identity{User: r.Header.Get("X-User"), Tenant: "acme"}
	})).Handler(next)
	long := `{"stream":true,"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 500) + `"}]}`
	for _, c := range []struct {
		name, method, path, body string
		model, tool              string
	}{
		{"openai body", "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, "gpt-4o-mini", ""},
		{"body past the peek", "POST", "/v1/chat/completions", long, "gpt-4o", ""},
		{"gemini path", "POST", "/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`, "gemini-2.5-flash", ""},
		{"mcp tools/call", "POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}`, "", "search"},
		{"mcp other method", "POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"nope"}}`, "", ""},
		{"not json", "POST", "/x", `model=gpt`, "", ""},
	} {
		seen = nil
		w := do(h, c.method, c.path, c.body, map[string]string{"X-User": "alice"})
		if w.Code != 200 {
			t.Fatalf("%s: %d", c.name, w.Code)
		}
		if len(seen) != 1 {
			t.Fatalf("%s: matcher saw %d requests", c.name, len(seen))
		}
		if got := seen[0]; got.Model != c.model || got.Tool != c.tool || got.User != "alice" || got.Tenant != "acme" {
			t.Errorf("%s: facts %+v, want model %q tool %q", c.name, got.Facts, c.model, c.tool)
		}
		if string(next.body) != c.body {
			t.Errorf("%s: upstream body %q, want the original byte for byte", c.name, next.body)
		}
	}
}

func TestCheckIsPure(t *testing.T) {
	l, _ := newLimiter(t, nil, []limiter.Rule{perKeyRule(5, time.Minute)})
	m := httplimit.New(l)
	body := `{"model":"gpt-4o"}`
	r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer k")
	before := r.Header.Clone()
	origBody := r.Body
	res := m.Check(r)
	if !res.Decision.Allowed || res.Request.Model != "" {
		t.Errorf("server request: allowed %v model %q (the body must not be read without GetBody)", res.Decision.Allowed, res.Request.Model)
	}
	if r.Body != origBody || len(r.Header) != len(before) {
		t.Error("Check modified the request")
	}
	got, _ := io.ReadAll(r.Body)
	if string(got) != body {
		t.Errorf("body after Check %q", got)
	}
	// A client request (GetBody set) is peeked through GetBody.
	c, _ := http.NewRequest("POST", "http://x/v1/chat/completions", bytes.NewReader([]byte(body)))
	if res := m.Check(c); res.Request.Model != "gpt-4o" {
		t.Errorf("client request: model %q", res.Request.Model)
	}
	if b, _ := io.ReadAll(c.Body); string(b) != body {
		t.Errorf("client request body consumed: %q", b)
	}
}

func TestRejectionLog(t *testing.T) {
	var logs logBuffer
	l, _ := newLimiter(t, nil, []limiter.Rule{perKeyRule(0, time.Minute)})
	h := httplimit.New(l, httplimit.WithLogger(newLogger(&logs)), httplimit.WithIdentity(func(*http.Request) httplimit.Identity {
		return httplimit.Identity{User: "bob"}
	})).Handler(&okHandler{})
	do(h, "GET", "/", "", map[string]string{"x-api-key": "k"})
	var rec map[string]any
	if err := json.Unmarshal([]byte(logs.String()), &rec); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if rec["msg"] != "tollgate: request rejected" || rec["user"] != "bob" || rec["rule"] != "per-key" ||
		rec["reason"] != "exceeds_capacity" || rec["status"] != 429.0 {
		t.Errorf("log %v", rec)
	}
	if strings.Contains(logs.String(), `"k"`) {
		t.Error("the API key was logged")
	}
}

func TestConcurrencyRuleReleasedAfterServe(t *testing.T) {
	l, _ := newLimiter(t, nil, []limiter.Rule{{Name: "inflight", Algorithm: algorithms.Concurrency, Limit: 1, Period: time.Minute}})
	m := httplimit.New(l)
	var inner *httptest.ResponseRecorder
	var h http.Handler
	h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inner == nil {
			inner = do(h, "GET", "/", "", nil) // while the first holds the slot
		}
	}))
	w := do(h, "GET", "/", "", nil)
	if w.Code != 200 || inner.Code != 429 || inner.Header().Get("Retry-After") != "1" {
		t.Fatalf("outer %d, inner %d (Retry-After %q), want 200 and 429 (1)", w.Code, inner.Code, inner.Header().Get("Retry-After"))
	}
	if pol, _ := parseSFList(inner.Header().Values("RateLimit-Policy")); len(pol) != 1 {
		t.Errorf("policy %v", pol)
	} else if qu, _ := pol[0].Param("qu"); qu != "concurrent-requests" {
		t.Errorf("policy %v", pol)
	}
	if w := do(h, "GET", "/", "", nil); w.Code != 200 {
		t.Errorf("after release: %d", w.Code)
	}
	_ = strconv.Itoa
}
