package httplimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/tokens"
)

// Prices in micro-USD per million tokens: gpt-4o costs 2.5 and 10 micro-USD
// an input and output token, gpt-4o-mini 0.15 and 0.6.
var downshiftPrices = map[string]tokens.Price{
	"gpt-4o":           {Input: 2_500_000, Output: 10_000_000},
	"gpt-4o-mini":      {Input: 150_000, Output: 600_000},
	"gemini-2.5-pro":   {Input: 1_250_000, Output: 10_000_000},
	"gemini-2.5-flash": {Input: 300_000, Output: 2_500_000},
}

// cheaper is what the downshift hook moves each model to; a request
// naming no model is downshifted to gpt-4o-mini.
var cheaper = map[string]string{"gpt-4o": "gpt-4o-mini", "gemini-2.5-pro": "gemini-2.5-flash", "": "gpt-4o-mini"}

// The budget: 500 micro-USD a day per user. A request with a 100-token
// output cap costs over 1000 on gpt-4o and under 100 on gpt-4o-mini.
const budgetLimit = 500

// usageBody is an OpenAI response reporting 10 input and 5 output tokens:
// 5 micro-USD on gpt-4o-mini (4.5 rounded up).
const usageBody = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`

// backend is the upstream: it records what reached it, over the wire.
type backend struct {
	mu      sync.Mutex
	calls   int
	body    []byte
	path    string
	rawPath string
	length  string // the Content-Length header it received
	header  http.Header
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	b.mu.Lock()
	b.calls++
	b.body, b.path, b.rawPath = body, r.URL.Path, r.URL.RawPath
	b.length = strconv.FormatInt(r.ContentLength, 10)
	b.header = r.Header.Clone()
	b.mu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, usageBody)
}

func (b *backend) last() (calls int, body []byte, path, length string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls, b.body, b.path, b.length
}

// downshiftStack is client -> middleware (LLM mode, priced) ->
// ReverseProxy -> backend over loopback HTTP, with a limiter that
// downshifts by cheaper.
type downshiftStack struct {
	back    *backend
	front   *httptest.Server
	lim     *limiter.Limiter
	charges chan httplimit.Charge
	logs    *logBuffer
}

// downshiftRules are the daily budget and a token rule per user and model,
// whose counters show which model a request was charged to.
func downshiftRules() []limiter.Rule {
	return []limiter.Rule{
		{Name: "daily-budget", Algorithm: algorithms.FixedWindow, Limit: budgetLimit, Calendar: limiter.Day,
			Unit: limiter.Cost, By: []dimensions.Dimension{dimensions.User}},
		{Name: "model-tokens", Algorithm: algorithms.FixedWindow, Limit: 1_000_000, Period: time.Hour,
			Unit: limiter.Tokens, By: []dimensions.Dimension{dimensions.User, dimensions.Model}},
	}
}

// downshiftHook moves a request to its cheaper model, priced again.
func downshiftHook(t testing.TB) func(context.Context, *limiter.Request, limiter.Decision) *limiter.Request {
	table := priceTable(t)
	return func(_ context.Context, req *limiter.Request, _ limiter.Decision) *limiter.Request {
		to, ok := cheaper[req.Model]
		if !ok {
			return nil
		}
		alt := *req
		alt.Model = to
		alt.Estimate, _ = limiter.Usage{InputTokens: req.Estimate.InputTokens, OutputTokens: req.Estimate.OutputTokens}.Priced(table, to)
		return &alt
	}
}

func priceTable(t testing.TB) *tokens.PriceTable {
	t.Helper()
	table, err := tokens.NewPriceTable("USD", downshiftPrices, nil)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// middlewareOptions are the options every downshift test uses: LLM mode,
// priced (an unknown or missing model at gpt-4o's price), alice as the
// user, and charges reported on ch.
func middlewareOptions(t testing.TB, logs *logBuffer, ch chan httplimit.Charge) []httplimit.Option {
	price := limiter.PriceFunc(priceTable(t), downshiftPrices["gpt-4o"])
	return []httplimit.Option{
		httplimit.WithLLM(),
		httplimit.WithLogger(newLogger(logs)),
		httplimit.WithCost(func(model string, u tokens.Usage) int64 {
			return price(model, limiter.Usage{InputTokens: u.Input, OutputTokens: u.Output})
		}),
		httplimit.WithIdentity(func(*http.Request) httplimit.Identity { return httplimit.Identity{User: "alice"} }),
		httplimit.WithChargeHook(func(_ context.Context, _ *http.Request, c httplimit.Charge) { ch <- c }),
	}
}

func newDownshiftStack(t *testing.T, opts ...httplimit.Option) *downshiftStack {
	t.Helper()
	s := &downshiftStack{back: &backend{}, charges: make(chan httplimit.Charge, 16), logs: &logBuffer{}}
	back := httptest.NewServer(s.back)
	t.Cleanup(back.Close)
	target, _ := url.Parse(back.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	s.lim, _ = newLimiter(t, nil, downshiftRules(), limiter.WithDownshift(downshiftHook(t)))
	opts = append(middlewareOptions(t, s.logs, s.charges), opts...)
	s.front = httptest.NewServer(httplimit.New(s.lim, opts...).Handler(proxy))
	t.Cleanup(s.front.Close)
	return s
}

// post sends body to path and returns the response with its body read.
func (s *downshiftStack) post(t *testing.T, path, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.front.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func (s *downshiftStack) charge(t *testing.T) httplimit.Charge {
	t.Helper()
	select {
	case c := <-s.charges:
		return c
	case <-time.After(10 * time.Second): // a watchdog against a hang
		t.Fatal("no settlement reported")
	}
	return httplimit.Charge{}
}

// remaining returns what rule has left for alice on model.
func (s *downshiftStack) remaining(t *testing.T, rule, model string) int64 {
	t.Helper()
	d := s.lim.Peek(context.Background(), &limiter.Request{Facts: dimensions.Facts{User: "alice", Model: model}})
	for i := range d.Len() {
		if r := d.Result(i); r.Rule.Name == rule {
			return r.Remaining
		}
	}
	t.Fatalf("rule %q did not match", rule)
	return 0
}

// oddChat names gpt-4o at the top level between blanks, and in nested
// members that must stay as they are.
const oddChat = "{\n  \"messages\": [{\"role\": \"user\", \"content\": \"Which \\\"model\\\" are you?\", \"model\": \"gpt-4o\"}],\n" +
	"  \"model\" :\t\"gpt-4o\" ,\n  \"max_tokens\": 100,\n  \"metadata\": {\"model\": \"gpt-4o\", \"list\": [\"model\", \"gpt-4o\"]}\n}"

func TestDownshiftRewritesTheBodyModel(t *testing.T) {
	s := newDownshiftStack(t)
	resp, body := s.post(t, "/v1/chat/completions", oddChat)
	if resp.StatusCode != http.StatusOK || body != usageBody {
		t.Fatalf("status %d body %q, want the upstream's 200", resp.StatusCode, body)
	}
	want := strings.Replace(oddChat, "\"model\" :\t\"gpt-4o\"", "\"model\" :\t\"gpt-4o-mini\"", 1)
	calls, got, path, length := s.back.last()
	if calls != 1 || string(got) != want {
		t.Errorf("upstream got (call %d)\n%s\nwant\n%s", calls, got, want)
	}
	if path != "/v1/chat/completions" || length != strconv.Itoa(len(want)) {
		t.Errorf("upstream path %q, Content-Length %s; want the same path and %d", path, length, len(want))
	}
	if got := resp.Header.Get("X-Tollgate-Downshifted"); got != "gpt-4o -> gpt-4o-mini" {
		t.Errorf("X-Tollgate-Downshifted %q", got)
	}
	c := s.charge(t)
	if c.Model != "gpt-4o-mini" || c.DownshiftedFrom != "gpt-4o" || c.Outcome != httplimit.Settled {
		t.Errorf("charge %+v, want settled on gpt-4o-mini, from gpt-4o", c)
	}
	if c.Charged.Cost != 5 || c.Estimate.Cost > 100 {
		t.Errorf("charged %d micro-USD on an estimate of %d, want gpt-4o-mini's 5 on an estimate under 100", c.Charged.Cost, c.Estimate.Cost)
	}
	if got := s.remaining(t, "daily-budget", ""); got != budgetLimit-5 {
		t.Errorf("budget left %d, want %d", got, budgetLimit-5)
	}
	if got := s.remaining(t, "model-tokens", "gpt-4o-mini"); got != 1_000_000-15 {
		t.Errorf("gpt-4o-mini tokens left %d, want 15 charged", got)
	}
	if got := s.remaining(t, "model-tokens", "gpt-4o"); got != 1_000_000 {
		t.Errorf("gpt-4o tokens left %d, want none charged", got)
	}
	if logs := s.logs.String(); !strings.Contains(logs, `"msg":"tollgate: request downshifted"`) ||
		!strings.Contains(logs, `"from":"gpt-4o","to":"gpt-4o-mini"`) {
		t.Errorf("no Info log of the downshift in\n%s", logs)
	}

	// A request the budget admits as it is goes through untouched.
	cheap := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	resp, _ = s.post(t, "/v1/chat/completions", cheap)
	if _, got, _, _ := s.back.last(); resp.StatusCode != 200 || string(got) != cheap || resp.Header.Get("X-Tollgate-Downshifted") != "" {
		t.Errorf("not downshifted: status %d, upstream got %s, header %q", resp.StatusCode, got, resp.Header.Get("X-Tollgate-Downshifted"))
	}
	s.charge(t)
}

func TestDownshiftAfterUsageInjection(t *testing.T) {
	s := newDownshiftStack(t, httplimit.WithUsageInjection())
	body := `{"model":"gpt-4o","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	resp, _ := s.post(t, "/v1/chat/completions", body)
	want := `{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	if _, got, _, length := s.back.last(); resp.StatusCode != 200 || string(got) != want || length != strconv.Itoa(len(want)) {
		t.Errorf("status %d, upstream got (Content-Length %s)\n%s\nwant\n%s", resp.StatusCode, length, got, want)
	}
	if c := s.charge(t); c.Model != "gpt-4o-mini" {
		t.Errorf("charged model %q", c.Model)
	}
}

func TestDownshiftRewritesTheGeminiPath(t *testing.T) {
	s := newDownshiftStack(t)
	body := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":100}}`
	resp, _ := s.post(t, "/v1beta/models/gemini-2.5-pro:generateContent?alt=json", body)
	calls, got, path, _ := s.back.last()
	if resp.StatusCode != 200 || calls != 1 {
		t.Fatalf("status %d, %d upstream calls", resp.StatusCode, calls)
	}
	if path != "/v1beta/models/gemini-2.5-flash:generateContent" || string(got) != body {
		t.Errorf("upstream got %s with\n%s\nwant the flash path and the body unchanged", path, got)
	}
	if c := s.charge(t); c.Model != "gemini-2.5-flash" || c.DownshiftedFrom != "gemini-2.5-pro" {
		t.Errorf("charge %+v, want gemini-2.5-flash from gemini-2.5-pro", c)
	}
}

func TestDownshiftRewritesATruncatedBody(t *testing.T) {
	s := newDownshiftStack(t, httplimit.WithBodyLimit(64))
	long := `{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"` +
		strings.Repeat("lorem ipsum ", 400) + `"}],"metadata":{"model":"gpt-4o"}}`
	resp, _ := s.post(t, "/v1/chat/completions", long)
	want := strings.Replace(long, `"gpt-4o"`, `"gpt-4o-mini"`, 1)
	calls, got, _, length := s.back.last()
	if resp.StatusCode != 200 || calls != 1 {
		t.Fatalf("status %d, %d upstream calls", resp.StatusCode, calls)
	}
	if string(got) != want || length != strconv.Itoa(len(want)) {
		t.Errorf("upstream got %d bytes (Content-Length %s), want the %d of the rewritten body, byte for byte", len(got), length, len(want))
	}
	if c := s.charge(t); c.Model != "gpt-4o-mini" {
		t.Errorf("charged model %q", c.Model)
	}
}

func TestDownshiftThatCannotBeAppliedIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		opts       []httplimit.Option
		wantErr    error
	}{
		// No model anywhere: the hook downshifts it to gpt-4o-mini, which
		// the request has nowhere to carry.
		{"no model", `{"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, nil, httplimit.ErrModelNotFound},
		// The model lies past the prefix read: the check saw none.
		{"model past the prefix", `{"max_tokens":100,"messages":[{"role":"user","content":"` +
			strings.Repeat("lorem ipsum ", 50) + `"}],"model":"gpt-4o"}`,
			[]httplimit.Option{httplimit.WithBodyLimit(64)}, httplimit.ErrModelNotFound},
		{"custom rewrite fails", `{"model":"gpt-4o","max_tokens":100}`,
			[]httplimit.Option{httplimit.WithDownshiftRewrite(func(*http.Request, *limiter.Request) (*http.Request, error) {
				return nil, errRouting
			})}, errRouting},
		{"custom rewrite returns nothing", `{"model":"gpt-4o","max_tokens":100}`,
			[]httplimit.Option{httplimit.WithDownshiftRewrite(func(*http.Request, *limiter.Request) (*http.Request, error) {
				return nil, nil
			})}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var refused *httplimit.DownshiftError
			deny := func(w http.ResponseWriter, r *http.Request, res *httplimit.Result) {
				errors.As(res.Decision.Limiting.Err, &refused)
				httplimit.WriteRejection(w, r, res)
			}
			s := newDownshiftStack(t, append(tc.opts, httplimit.WithDenyHandler(deny))...)
			resp, body := s.post(t, "/v1/chat/completions", tc.body)
			if calls, _, _, _ := s.back.last(); calls != 0 {
				t.Fatalf("the upstream was called %d times", calls)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("status %d %s, want 503 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var p struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != 503 ||
				!strings.Contains(p.Detail, `only on model "gpt-4o-mini"`) {
				t.Errorf("problem %s (%v), want 503 naming gpt-4o-mini", body, err)
			}
			if resp.Header.Get("RateLimit") != "" || resp.Header.Get("X-Tollgate-Downshifted") != "" {
				t.Errorf("headers of the admitted rewrite on the refusal: %v", resp.Header)
			}
			if refused == nil || refused.To != "gpt-4o-mini" || tc.wantErr != nil && !errors.Is(refused, tc.wantErr) {
				t.Errorf("deny handler got %v, want a DownshiftError to gpt-4o-mini wrapping %v", refused, tc.wantErr)
			}
			if got := s.remaining(t, "daily-budget", ""); got != budgetLimit {
				t.Errorf("budget left %d, want the reservation given back (%d)", got, budgetLimit)
			}
			if logs := s.logs.String(); !strings.Contains(logs, `"level":"WARN","msg":"tollgate: downshift not applied"`) ||
				!strings.Contains(logs, `"reason":"downshift_not_applied"`) {
				t.Errorf("logs\n%s", logs)
			}
		})
	}
}

var errRouting = errors.New("no deployment for the model")

func TestDownshiftCustomRewrite(t *testing.T) {
	// Azure OpenAI names the deployment in the path; this host routes the
	// downshift there and leaves the body alone.
	rewrite := func(r *http.Request, to *limiter.Request) (*http.Request, error) {
		f := r.Clone(r.Context())
		f.URL.Path = "/openai/deployments/" + to.Model + "/chat/completions"
		f.Header.Set("X-Deployment", to.Model)
		return f, nil
	}
	s := newDownshiftStack(t, httplimit.WithDownshiftRewrite(rewrite))
	body := `{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	resp, _ := s.post(t, "/openai/deployments/gpt-4o/chat/completions", body)
	calls, got, path, _ := s.back.last()
	if resp.StatusCode != 200 || calls != 1 {
		t.Fatalf("status %d, %d upstream calls", resp.StatusCode, calls)
	}
	s.back.mu.Lock()
	dep := s.back.header.Get("X-Deployment")
	s.back.mu.Unlock()
	if path != "/openai/deployments/gpt-4o-mini/chat/completions" || dep != "gpt-4o-mini" || string(got) != body {
		t.Errorf("upstream got %s (X-Deployment %q)\n%s\nwant the custom rewrite's path and header, the body unchanged", path, dep, got)
	}
	if c := s.charge(t); c.Model != "gpt-4o-mini" {
		t.Errorf("charged model %q", c.Model)
	}
}

// TestDownshiftLeavesTheRequestAlone serves requests in process, to look at
// the *http.Request next gets and at the original afterwards.
func TestDownshiftLeavesTheRequestAlone(t *testing.T) {
	for _, tc := range []struct {
		name, target, body string
		wantPath, wantRaw  string
		wantBody           string
	}{
		{"body", "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":100}`,
			"/v1/chat/completions", "", `{"model":"gpt-4o-mini","max_tokens":100}`},
		{"path", "/v1beta/models/gemini-2.5-pro:generateContent", `{"generationConfig":{"maxOutputTokens":100}}`,
			"/v1beta/models/gemini-2.5-flash:generateContent", "", `{"generationConfig":{"maxOutputTokens":100}}`},
		{"escaped path", "/v1beta/models/gemini-2.5-pro%3AgenerateContent", `{"generationConfig":{"maxOutputTokens":100}}`,
			"/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash%3AgenerateContent",
			`{"generationConfig":{"maxOutputTokens":100}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newLimiter(t, nil, downshiftRules(), limiter.WithDownshift(downshiftHook(t)))
			ch := make(chan httplimit.Charge, 1)
			var fwd *http.Request
			var fwdBody, again []byte
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fwd = r
				fwdBody, _ = io.ReadAll(r.Body)
				if rc, err := r.GetBody(); err == nil {
					again, _ = io.ReadAll(rc)
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, usageBody)
			})
			h := httplimit.New(l, middlewareOptions(t, &logBuffer{}, ch)...).Handler(next)

			r := httptest.NewRequest("POST", tc.target, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Content-Length", strconv.Itoa(len(tc.body)))
			original := []byte(tc.body)
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(original)), nil }
			url0, rawPath0, uri0, header0, length0 := r.URL, r.URL.RawPath, r.RequestURI, r.Header.Clone(), r.ContentLength

			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			<-ch
			if w.Code != 200 || fwd == nil {
				t.Fatalf("status %d, next called: %v", w.Code, fwd != nil)
			}
			if fwd == r {
				t.Fatal("next got the original request")
			}
			if fwd.URL.Path != tc.wantPath || fwd.URL.RawPath != tc.wantRaw || string(fwdBody) != tc.wantBody || string(again) != tc.wantBody {
				t.Errorf("next got %s (raw %q) with %s, GetBody %s; want %s (raw %q) with %s",
					fwd.URL.Path, fwd.URL.RawPath, fwdBody, again, tc.wantPath, tc.wantRaw, tc.wantBody)
			}
			if want := int64(len(tc.wantBody)); fwd.ContentLength != want || fwd.Header.Get("Content-Length") != strconv.FormatInt(want, 10) {
				t.Errorf("next got ContentLength %d, Content-Length %q; want %d", fwd.ContentLength, fwd.Header.Get("Content-Length"), want)
			}
			if want := fwd.URL.RequestURI(); fwd.RequestURI != want {
				t.Errorf("next got RequestURI %q, want %q", fwd.RequestURI, want)
			}
			if r.URL != url0 || r.URL.RawPath != rawPath0 || r.RequestURI != uri0 || r.ContentLength != length0 ||
				r.URL.Path != strings.ReplaceAll(tc.target, "%3A", ":") || !equalHeader(r.Header, header0) {
				t.Errorf("the original request changed: %s %q %q %d %v", r.URL, r.URL.RawPath, r.RequestURI, r.ContentLength, r.Header)
			}
			if rc, _ := r.GetBody(); rc != nil {
				if b, _ := io.ReadAll(rc); string(b) != tc.body {
					t.Errorf("the original GetBody gives %s", b)
				}
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}
