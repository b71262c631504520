package httplimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/tokens"
)

// chatBody is a streaming chat request without stream_options.
const chatBody = `{"model":"gpt-4o-mini","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"Say hello to the billing team."}]}`

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// upstream is an LLM API stand-in that streams a body in chunks. When
// step is non-nil it waits for a value on step before producing each
// chunk after the first, so that a test can check what the client holds
// in between.
type upstream struct {
	t       testing.TB
	status  int
	ctype   string
	chunks  [][]byte
	step    chan struct{}
	calls   atomic.Int32
	mu      sync.Mutex
	body    []byte // the last request body
	aborted chan struct{}
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.body = b
	u.mu.Unlock()
	ct := u.ctype
	if ct == "" {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	if u.status != 0 {
		w.WriteHeader(u.status)
	}
	rc := http.NewResponseController(w)
	for i, c := range u.chunks {
		if u.step != nil && i > 0 {
			select {
			case <-u.step:
			case <-r.Context().Done():
				if u.aborted != nil {
					close(u.aborted)
				}
				return
			}
		}
		w.Write(c)
		rc.Flush()
	}
}

func (u *upstream) lastBody() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.body
}

// llmStack is a client -> middleware -> ReverseProxy -> upstream chain over
// loopback HTTP.
type llmStack struct {
	up      *upstream
	front   *httptest.Server
	lim     *limiter.Limiter
	charges chan httplimit.Charge
	logs    *logBuffer
}

func newLLMStack(t *testing.T, up *upstream, rules []limiter.Rule, opts ...httplimit.Option) *llmStack {
	t.Helper()
	return newLLMStackFor(t, up, up, rules, opts...)
}

// newLLMStackFor is newLLMStack with h serving in front of up.
func newLLMStackFor(t *testing.T, up *upstream, h http.Handler, rules []limiter.Rule, opts ...httplimit.Option) *llmStack {
	t.Helper()
	back := httptest.NewServer(h)
	t.Cleanup(back.Close)
	target, _ := url.Parse(back.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	l, _ := newLimiter(t, nil, rules)
	s := &llmStack{up: up, lim: l, charges: make(chan httplimit.Charge, 16), logs: &logBuffer{}}
	opts = append([]httplimit.Option{
		httplimit.WithLLM(),
		httplimit.WithLogger(newLogger(s.logs)),
		httplimit.WithIdentity(func(r *http.Request) httplimit.Identity { return httplimit.Identity{User: r.Header.Get("X-User")} }),
		httplimit.WithChargeHook(func(_ context.Context, _ *http.Request, c httplimit.Charge) { s.charges <- c }),
	}, opts...)
	s.front = httptest.NewServer(httplimit.New(l, opts...).Handler(proxy))
	t.Cleanup(s.front.Close)
	return s
}

func (s *llmStack) post(t *testing.T, ctx context.Context, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.front.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// charge waits for the next settlement report.
func (s *llmStack) charge(t *testing.T) httplimit.Charge {
	t.Helper()
	select {
	case c := <-s.charges:
		return c
	case <-time.After(10 * time.Second): // a watchdog against a hang, not a timing assertion
		t.Fatal("no settlement reported")
	}
	return httplimit.Charge{}
}

// remaining peeks at what rule has left for alice.
func (s *llmStack) remaining(t *testing.T, rule string) int64 {
	t.Helper()
	d := s.lim.Peek(context.Background(), &limiter.Request{Facts: dimensions.Facts{User: "alice"}})
	for i := range d.Len() {
		if r := d.Result(i); r.Rule.Name == rule {
			return r.Remaining
		}
	}
	t.Fatalf("rule %q did not match", rule)
	return 0
}

func tokenRule(limit int64) limiter.Rule {
	return limiter.Rule{Name: "tpm", Algorithm: algorithms.FixedWindow, Limit: limit, Period: time.Hour,
		Unit: limiter.Tokens, By: []dimensions.Dimension{dimensions.User}}
}

func TestLLMStreamsChunkByChunk(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	up := &upstream{t: t, chunks: split(sse, 97), step: make(chan struct{})}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(100000)})
	resp := s.post(t, t.Context(), chatBody)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := parseSFList(resp.Header.Values("RateLimit")); err != nil {
		t.Errorf("RateLimit on a streamed response: %v", err)
	}
	var got bytes.Buffer
	for i, c := range up.chunks {
		if i > 0 {
			up.step <- struct{}{} // let the upstream produce chunk i
		}
		buf := make([]byte, len(c))
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(resp.Body, buf); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
		case <-time.After(10 * time.Second): // watchdog: a buffering middleware hangs here
			t.Fatalf("chunk %d never reached the client before the upstream produced the next", i)
		}
		if !bytes.Equal(buf, c) {
			t.Fatalf("chunk %d: got %q, want %q", i, buf, c)
		}
		got.Write(buf)
	}
	if rest, _ := io.ReadAll(resp.Body); len(rest) != 0 {
		t.Errorf("extra bytes %q", rest)
	}
	if !bytes.Equal(got.Bytes(), sse) {
		t.Error("stream altered")
	}
	if !bytes.Equal(up.lastBody(), []byte(chatBody)) {
		t.Errorf("upstream body %q, want the client's byte for byte", up.lastBody())
	}
	c := s.charge(t)
	if c.Outcome != httplimit.Settled || !c.Measured || c.Charged.InputTokens != 19 || c.Charged.OutputTokens != 9 {
		t.Errorf("charge %+v, want settled 19 in / 9 out", c)
	}
	if c.Estimate.OutputTokens != 50 || c.Estimate.InputTokens <= 0 {
		t.Errorf("estimate %+v, want 50 output (max_tokens) and some input", c.Estimate)
	}
	if got := s.remaining(t, "tpm"); got != 100000-28 {
		t.Errorf("tpm remaining %d, want %d: the reservation is corrected to the measured usage", got, 100000-28)
	}
	var rec map[string]any
	for line := range strings.Lines(s.logs.String()) {
		if strings.Contains(line, "request settled") {
			json.Unmarshal([]byte(line), &rec)
		}
	}
	reserved := c.Estimate.InputTokens + c.Estimate.OutputTokens
	if rec["input_tokens"] != 19.0 || rec["output_tokens"] != 9.0 || rec["increment"] != float64(28-reserved) ||
		rec["user"] != "alice" || rec["outcome"] != "settled" {
		t.Errorf("settle log %v", rec)
	}
}

func TestLLMDelayedOutputQuota(t *testing.T) {
	up := &upstream{t: t, chunks: split(fixture(t, "openai_chat_stream.sse"), 500)}
	quota := limiter.Rule{Name: "user-output", Algorithm: algorithms.FixedWindow, Limit: 5, Period: 24 * time.Hour,
		Unit: limiter.OutputTokens, By: []dimensions.Dimension{dimensions.User},
		Reject: &limiter.Rejection{Status: 429, Body: []byte(`{"error":"daily output quota reached"}`)}}
	s := newLLMStack(t, up, []limiter.Rule{quota})
	resp := s.post(t, t.Context(), chatBody)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, fixture(t, "openai_chat_stream.sse")) {
		t.Fatalf("the response that crosses the quota: %d, %d bytes; want 200 and the whole stream", resp.StatusCode, len(body))
	}
	if c := s.charge(t); c.Charged.OutputTokens != 9 {
		t.Fatalf("charged %+v, want 9 output tokens", c)
	}
	resp = s.post(t, t.Context(), chatBody)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || string(body) != `{"error":"daily output quota reached"}` {
		t.Errorf("next request: %d %q, want the rule's rejection", resp.StatusCode, body)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream called %d times, want 1", n)
	}
	if !strings.Contains(s.logs.String(), `"rule":"user-output"`) {
		t.Errorf("no rejection log: %s", s.logs.String())
	}
}

func TestLLMUpstreamErrorRefunds(t *testing.T) {
	for _, status := range []int{500, 503, 429} {
		up := &upstream{t: t, status: status, ctype: "application/json",
			chunks: [][]byte{[]byte(`{"error":{"message":"overloaded"}}`)}}
		s := newLLMStack(t, up, []limiter.Rule{tokenRule(1000)})
		resp := s.post(t, t.Context(), chatBody)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("status %d, want %d passed through", resp.StatusCode, status)
		}
		if c := s.charge(t); c.Outcome != httplimit.Cancelled || c.Status != status {
			t.Errorf("%d: charge %+v, want cancelled", status, c)
		}
		if got := s.remaining(t, "tpm"); got != 1000 {
			t.Errorf("%d: remaining %d, want 1000 (refunded)", status, got)
		}
	}
}

func TestLLMStreamWithoutUsage(t *testing.T) {
	up := &upstream{t: t, chunks: split(fixture(t, "openai_chat_stream_no_usage.sse"), 300)}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(1000)})
	resp := s.post(t, t.Context(), chatBody)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c := s.charge(t)
	if c.Outcome != httplimit.UsageMissing || c.Measured || c.Charged != c.Estimate {
		t.Errorf("charge %+v, want usage missing, charged the estimate", c)
	}
	if got, want := s.remaining(t, "tpm"), 1000-c.Estimate.InputTokens-c.Estimate.OutputTokens; got != want {
		t.Errorf("remaining %d, want %d", got, want)
	}
}

func TestLLMClientDisconnect(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	up := &upstream{t: t, chunks: split(sse, 200), step: make(chan struct{}), aborted: make(chan struct{})}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(1000)})
	ctx, cancel := context.WithCancel(t.Context())
	resp := s.post(t, ctx, chatBody)
	buf := make([]byte, 200)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel() // the client goes away mid-stream
	resp.Body.Close()
	<-up.aborted // the proxy cancelled the upstream call
	c := s.charge(t)
	if c.Outcome != httplimit.Disconnected || c.Measured || c.Charged != c.Estimate {
		t.Errorf("charge %+v, want disconnected, charged the reservation", c)
	}
}

func TestLLMDisconnectAfterUsageChargesUsage(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	cut := bytes.Index(sse, []byte("data: [DONE]"))
	up := &upstream{t: t, chunks: [][]byte{sse[:cut], sse[cut:]}, step: make(chan struct{}), aborted: make(chan struct{})}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(1000)})
	ctx, cancel := context.WithCancel(t.Context())
	resp := s.post(t, ctx, chatBody)
	if _, err := io.ReadFull(resp.Body, make([]byte, cut)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	<-up.aborted
	c := s.charge(t)
	if c.Outcome != httplimit.Disconnected || !c.Measured || c.Charged.OutputTokens != 9 {
		t.Errorf("charge %+v, want disconnected with the measured usage", c)
	}
}

func TestLLMUsageInjection(t *testing.T) {
	sse := fixture(t, "openai_chat_stream.sse")
	up := &upstream{t: t, chunks: split(sse, 150)}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(1000)}, httplimit.WithUsageInjection())

	resp := s.post(t, t.Context(), chatBody)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sent struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Model string `json:"model"`
	}
	if err := json.Unmarshal(up.lastBody(), &sent); err != nil || !sent.StreamOptions.IncludeUsage || sent.Model != "gpt-4o-mini" {
		t.Errorf("upstream body %s: include_usage not injected", up.lastBody())
	}
	start := bytes.LastIndex(sse[:bytes.Index(sse, []byte(`"choices":[],"usage"`))], []byte("data: "))
	end := start + bytes.Index(sse[start:], []byte("\n\n")) + 2
	want := append(append([]byte{}, sse[:start]...), sse[end:]...)
	if !bytes.Equal(got, want) {
		t.Errorf("client stream:\n%s\nwant the upstream's without the usage chunk:\n%s", got, want)
	}
	if c := s.charge(t); c.Outcome != httplimit.Settled || c.Charged.OutputTokens != 9 {
		t.Errorf("charge %+v", c)
	}

	// A client that asked for usage gets its body and the chunk untouched.
	asked := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`
	resp = s.post(t, t.Context(), asked)
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(up.lastBody()) != asked || !bytes.Equal(got, sse) {
		t.Errorf("include_usage already set: body %q, stream changed: %v", up.lastBody(), !bytes.Equal(got, sse))
	}
	s.charge(t)

	// stream_options without include_usage is merged, not duplicated.
	other := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_obfuscation":false},"messages":[]}`
	resp = s.post(t, t.Context(), other)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var m2 struct {
		SO map[string]bool `json:"stream_options"`
	}
	json.Unmarshal(up.lastBody(), &m2)
	if !m2.SO["include_usage"] || m2.SO["include_obfuscation"] || len(m2.SO) != 2 {
		t.Errorf("merged stream_options %s", up.lastBody())
	}
	s.charge(t)
}

func TestLLMResponseControllerThroughWrapper(t *testing.T) {
	l, _ := newLimiter(t, nil, []limiter.Rule{tokenRule(1000)})
	errs := make(chan [2]error, 1)
	h := httplimit.New(l, httplimit.WithLLM()).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadlineErr := rc.SetWriteDeadline(time.Now().Add(time.Minute))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"usage":{"prompt_tokens":3,"completion_tokens":4}}`))
		errs <- [2]error{deadlineErr, rc.Flush()}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e := <-errs; e[0] != nil || e[1] != nil {
		deadlineErr, flushErr := e[0], e[1]
		t.Errorf("SetWriteDeadline: %v, Flush: %v; want both to reach the server's writer", deadlineErr, flushErr)
	}
}

func TestLLMOtherProvidersAndEncodings(t *testing.T) {
	gz := fixture(t, "openai_chat.json.gz")
	for _, c := range []struct {
		name, ctype, enc string
		body             []byte
		in, out          int64
	}{
		{"anthropic sse", "text/event-stream", "", fixture(t, "anthropic_messages_stream.sse"), 25, 15},
		{"openai json gzip", "application/json", "gzip", gz, 1254, 389},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &upstream{t: t, ctype: c.ctype, chunks: split(c.body, 64)}
			var h http.Handler = up
			if c.enc != "" {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Encoding", c.enc)
					up.ServeHTTP(w, r)
				})
			}
			s := newLLMStackFor(t, up, h, []limiter.Rule{tokenRule(100000)})
			req, _ := http.NewRequest("POST", s.front.URL+"/v1/messages", strings.NewReader(`{"model":"claude-x","max_tokens":100,"messages":[]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept-Encoding", "gzip") // keep the transport from decoding it
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, c.body) {
				t.Errorf("body changed on the way")
			}
			ch := s.charge(t)
			if ch.Outcome != httplimit.Settled || !ch.Measured {
				t.Fatalf("charge %+v, want settled with measured usage", ch)
			}
			if ch.Charged.InputTokens != c.in || ch.Charged.OutputTokens != c.out {
				t.Errorf("charged %+v, want %d in / %d out", ch.Charged, c.in, c.out)
			}
		})
	}
}

func TestLLMCostAndDefaultOutput(t *testing.T) {
	up := &upstream{t: t, chunks: [][]byte{fixture(t, "openai_chat_stream.sse")}}
	budget := limiter.Rule{Name: "budget", Algorithm: algorithms.FixedWindow, Limit: 1_000_000, Period: time.Hour,
		Unit: limiter.Cost, By: []dimensions.Dimension{dimensions.User}}
	price := func(model string, u tokens.Usage) int64 {
		if model != "gpt-4o-mini" {
			t.Errorf("priced model %q", model)
		}
		return u.Input*10 + u.Output*40 // micro-units per token
	}
	s := newLLMStack(t, up, []limiter.Rule{budget}, httplimit.WithCost(price), httplimit.WithDefaultMaxOutput(256),
		httplimit.WithoutPolicyHeader())
	resp := s.post(t, t.Context(), `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("RateLimit-Policy") != "" || resp.Header.Get("RateLimit") == "" {
		t.Errorf("WithoutPolicyHeader: RateLimit-Policy %q, RateLimit %q", resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
	}
	c := s.charge(t)
	if c.Estimate.OutputTokens != 256 || c.Estimate.Cost != c.Estimate.InputTokens*10+256*40 {
		t.Errorf("estimate %+v, want 256 output tokens (the default) priced", c.Estimate)
	}
	if c.Charged.Cost != 19*10+9*40 {
		t.Errorf("charged %+v, want cost %d", c.Charged, 19*10+9*40)
	}
	if got := s.remaining(t, "budget"); got != 1_000_000-(19*10+9*40) {
		t.Errorf("budget remaining %d", got)
	}
}

func TestLLMPriceTable(t *testing.T) {
	table, err := tokens.NewPriceTable("USD", map[string]tokens.Price{
		"gpt-4o-mini": {Input: 150_000, CachedInput: 75_000, Output: 600_000}, // per 1M tokens
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := &upstream{t: t, chunks: [][]byte{fixture(t, "openai_chat_stream.sse")}}
	budget := limiter.Rule{Name: "budget", Algorithm: algorithms.FixedWindow, Limit: 1_000_000, Period: time.Hour,
		Unit: limiter.Cost, By: []dimensions.Dimension{dimensions.User}}
	s := newLLMStack(t, up, []limiter.Rule{budget}, httplimit.WithPriceTable(table))
	resp := s.post(t, t.Context(), chatBody)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c := s.charge(t)
	// 19 input and 9 output tokens at the request model's price, rounded up.
	want := (19*150_000 + 9*600_000 + 999_999) / 1_000_000
	if c.Charged.Cost != int64(want) || c.Estimate.Cost <= 0 {
		t.Errorf("charge %+v, want cost %d from the table", c, want)
	}
}

func TestLLMBodyOverLimitEstimatedFromLength(t *testing.T) {
	up := &upstream{t: t, chunks: [][]byte{fixture(t, "openai_chat_stream.sse")}}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(1_000_000)}, httplimit.WithBodyLimit(80))
	long := `{"model":"gpt-4o-mini","max_tokens":77,"stream":true,"messages":[{"role":"user","content":"` +
		strings.Repeat("lorem ipsum ", 400) + `"}]}`
	resp := s.post(t, t.Context(), long)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !bytes.Equal(up.lastBody(), []byte(long)) {
		t.Errorf("upstream got %d bytes, want the %d the client sent, byte for byte", len(up.lastBody()), len(long))
	}
	c := s.charge(t)
	if want := int64((len(long) + 3) / 4); c.Estimate.InputTokens != want || c.Estimate.OutputTokens != 77 || c.Model != "gpt-4o-mini" {
		t.Errorf("estimate %+v model %q, want %d input from the length, 77 output from the prefix", c.Estimate, c.Model, want)
	}
}

// TestLLMChunkedBodyOverLimitWithoutUsage: a chunked body (no
// Content-Length) past the read cap is estimated from its prefix; when the
// response then carries no usage, the settlement charges what the whole
// body's length says, counted as the upstream read it.
func TestLLMChunkedBodyOverLimitWithoutUsage(t *testing.T) {
	up := &upstream{t: t, chunks: split(fixture(t, "openai_chat_stream_no_usage.sse"), 300)}
	s := newLLMStack(t, up, []limiter.Rule{tokenRule(1_000_000)}, httplimit.WithBodyLimit(80))
	long := `{"model":"gpt-4o-mini","max_tokens":77,"stream":true,"messages":[{"role":"user","content":"` +
		strings.Repeat("lorem ipsum ", 400) + `"}]}`
	// An io.Reader that is not a *strings.Reader: the client sends it
	// chunked, without Content-Length.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.front.URL+"/v1/chat/completions", io.MultiReader(strings.NewReader(long)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !bytes.Equal(up.lastBody(), []byte(long)) {
		t.Fatalf("upstream got %d bytes, want the %d the client sent, byte for byte", len(up.lastBody()), len(long))
	}
	c := s.charge(t)
	whole := int64((len(long) + 3) / 4)
	if c.Estimate.InputTokens >= whole {
		t.Fatalf("estimate %+v: want it from the prefix only, below %d (else this test shows nothing)", c.Estimate, whole)
	}
	if c.Outcome != httplimit.UsageMissing || c.Charged.InputTokens != whole || c.Charged.OutputTokens != 77 {
		t.Errorf("charge %+v, want usage missing, %d input tokens from the whole body's length, 77 output", c, whole)
	}
	if got, want := s.remaining(t, "tpm"), 1_000_000-whole-77; got != want {
		t.Errorf("remaining %d, want %d", got, want)
	}
}
