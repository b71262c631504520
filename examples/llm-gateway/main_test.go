package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/middleware/admin"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// gateway is a gateway started in-process by run, in front of a mock
// upstream that counts the calls reaching it.
type gateway struct {
	t        *testing.T
	url      string // http://host:port
	adminURL string
	token    string
	upstream *mockUpstream
	out      *lockedBuffer
}

func startGateway(t *testing.T, args ...string) *gateway {
	t.Helper()
	up := &mockUpstream{chunkDelay: time.Millisecond}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	out := new(lockedBuffer)
	done := make(chan error, 1)
	args = append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-upstream", srv.URL}, args...)
	go func() { done <- run(ctx, args, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	re := regexp.MustCompile(`listening on (http://\S+) .*\nadmin API on (http://\S+), token (\S+)\n`)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return &gateway{t: t, url: m[1], adminURL: m[2], token: m[3], upstream: up, out: out}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned %v before listening:\n%s", err, out)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not start:\n%s", out)
		}
	}
}

// client is the official OpenAI Go client, as an application would use
// it, with retries off so that the test sees every 429.
func (g *gateway) client(key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(g.url+"/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
	)
}

// adminGet decodes the JSON of an admin API path.
func (g *gateway) adminGet(path string, v any) {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.adminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		g.t.Fatal(err)
	}
}

// usage returns today's usage of a subject from the admin API.
func (g *gateway) usage(dimension, value string) ledger.Usage {
	g.t.Helper()
	var r admin.UsageReport
	g.adminGet("/usage?"+dimension+"="+value, &r)
	return r.Usage
}

// waitSettled waits until user's output tokens reach want. The middleware
// settles after the response's last byte, so a client that stops reading
// at [DONE] may be faster than the settlement.
func (g *gateway) waitSettled(user string, want int64) ledger.Usage {
	g.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		u := g.usage("user", user)
		if u.OutputTokens >= want {
			return u
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: %d output tokens settled, want %d", user, u.OutputTokens, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hi(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hi")},
	}
}

// apiError returns err as the SDK's error, failing the test if it is not.
func apiError(t *testing.T, err error, wantStatus int) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want an *openai.Error", err)
	}
	if e.StatusCode != wantStatus {
		t.Fatalf("status %d, want %d: %v", e.StatusCode, wantStatus, err)
	}
	return e
}

func TestAdmittedThenRefusedWithHeaders(t *testing.T) {
	g := startGateway(t)
	c := g.client("sk-demo-alice")
	for i := range 3 {
		resp, err := c.Chat.Completions.New(t.Context(), hi("demo-mini"))
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if resp.Usage.CompletionTokens != answerTokens || resp.Choices[0].Message.Content == "" {
			t.Errorf("request %d: usage %+v, content %q", i+1, resp.Usage, resp.Choices[0].Message.Content)
		}
	}
	_, err := c.Chat.Completions.New(t.Context(), hi("demo-mini"))
	e := apiError(t, err, http.StatusTooManyRequests)
	if e.Code != "rate_limit_exceeded" {
		t.Errorf("error code %q, want rate_limit_exceeded", e.Code)
	}
	h := e.Response.Header
	if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", h.Get("Retry-After"))
	}
	if got, want := h.Get("RateLimit"), `"model:demo-mini:rpm";r=0;t=`+h.Get("Retry-After"); got != want {
		t.Errorf("RateLimit %q, want %q", got, want)
	}
	for _, want := range []string{
		`"model:demo-mini:rpm";q=3;w=60`,
		`"key-tpm";q=60000;qu="tokens";w=60`, // 30% of team-tpm's 200000
		`"tenant-daily-budget";q=100000000;qu="cost-micros";w=86400`,
	} {
		if !strings.Contains(h.Get("RateLimit-Policy"), want) {
			t.Errorf("RateLimit-Policy %q lacks %s", h.Get("RateLimit-Policy"), want)
		}
	}
	if got := h.Get("X-Ratelimit-Remaining-Requests"); got != "0" {
		t.Errorf("x-ratelimit-remaining-requests %q, want 0", got)
	}
	if n := g.upstream.Calls(); n != 3 {
		t.Errorf("upstream called %d times, want 3", n)
	}
	// Other models and other keys have counters of their own.
	if _, err := c.Chat.Completions.New(t.Context(), hi("gpt-4o-mini")); err != nil {
		t.Errorf("gpt-4o-mini: %v", err)
	}
	// A model without a price is refused by the guard (403), before any counter.
	_, err = c.Chat.Completions.New(t.Context(), hi("o3"))
	if e := apiError(t, err, http.StatusForbidden); e.Code != "model_not_found" {
		t.Errorf("o3: code %q, want model_not_found", e.Code)
	}
	// Unknown keys never reach the limiter.
	unknown := g.client("sk-unknown")
	_, err = unknown.Chat.Completions.New(t.Context(), hi("gpt-4o-mini"))
	apiError(t, err, http.StatusUnauthorized)
}

// TestDelayedOutputQuotaOnStream: carol may have 500 output tokens a day,
// and each answer has 300. The first stream is admitted under the quota;
// the second is admitted too (the counter is at 300), crosses the quota
// and completes; the third request is refused without reaching the
// upstream.
func TestDelayedOutputQuotaOnStream(t *testing.T) {
	g := startGateway(t)
	c := g.client("sk-demo-carol")
	params := hi("gpt-4o-mini")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	for i := int64(1); i <= 2; i++ {
		stream := c.Chat.Completions.NewStreaming(t.Context(), params)
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if acc.Usage.CompletionTokens != answerTokens || len(strings.Fields(acc.Choices[0].Message.Content)) != answerTokens {
			t.Fatalf("stream %d: usage %+v, %d words in %d chunks: want the whole answer",
				i, acc.Usage, len(strings.Fields(acc.Choices[0].Message.Content)), chunks)
		}
		if u := g.waitSettled("carol", i*answerTokens); u.OutputTokens != i*answerTokens || u.Requests != i {
			t.Fatalf("after stream %d: charged %+v, want %d requests and %d output tokens", i, u, i, i*answerTokens)
		}
	}
	stream := c.Chat.Completions.NewStreaming(t.Context(), params)
	for stream.Next() {
		t.Error("the third stream sent a chunk")
	}
	e := apiError(t, stream.Err(), http.StatusTooManyRequests)
	if e.Code != "daily_output_tokens" || e.Response.Header.Get("X-Quota") != "daily-output-tokens" {
		t.Errorf("code %q, x-quota %q: want the quota's rejection", e.Code, e.Response.Header.Get("X-Quota"))
	}
	if !strings.HasPrefix(e.Response.Header.Get("RateLimit"), `"trial-daily-output";r=0;`) {
		t.Errorf("RateLimit %q, want trial-daily-output exhausted", e.Response.Header.Get("RateLimit"))
	}
	if n := g.upstream.Calls(); n != 2 {
		t.Errorf("upstream called %d times, want 2: the refused request must not reach it", n)
	}
	// Alice, on the same tenant, has her own quota.
	alice := g.client("sk-demo-alice")
	if _, err := alice.Chat.Completions.New(t.Context(), hi("gpt-4o-mini")); err != nil {
		t.Errorf("alice: %v", err)
	}
}

// TestBudgetAlertThenThrottling: hobbyco's budget is 0.02 USD a day. Each
// gpt-4o request reserves its price with max_tokens 300 (about 0.003 USD):
// the sixth crosses 80% and fires the alert, the seventh does not fit.
func TestBudgetAlertThenThrottling(t *testing.T) {
	g := startGateway(t)
	c := g.client("sk-demo-dave")
	params := hi("gpt-4o")
	params.MaxTokens = openai.Int(300)
	admitted := 0
	var err error
	for range 10 {
		if _, err = c.Chat.Completions.New(t.Context(), params); err != nil {
			break
		}
		admitted++
		g.waitSettled("dave", int64(admitted)*300)
	}
	if admitted != 6 {
		t.Errorf("%d requests admitted, want 6", admitted)
	}
	if e := apiError(t, err, http.StatusTooManyRequests); e.Code != "daily_budget" {
		t.Errorf("code %q, want daily_budget", e.Code)
	}
	var alerts []alert
	g.adminGet("/alerts", &alerts)
	if len(alerts) != 1 || alerts[0].Rule != "hobbyco-daily-budget" || alerts[0].Threshold != 0.8 ||
		!strings.Contains(alerts[0].Counter, "tenant=hobbyco") {
		t.Fatalf("alerts %+v, want one for hobbyco-daily-budget at 80%%", alerts)
	}
	if !strings.Contains(g.out.String(), "budget alert: hobbyco-daily-budget reached 80%") {
		t.Errorf("the gateway did not print the alert:\n%s", g.out)
	}
	u := g.usage("tenant", "hobbyco")
	if u.Cost < 16000 || u.Cost > 20000 || u.Requests != 6 || u.Denials != 1 {
		t.Errorf("hobbyco's usage %+v, want 6 requests, 1 denial, 80%% to 100%% of 20000 micro-USD", u)
	}
}

func TestAdminAPI(t *testing.T) {
	g := startGateway(t)
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + g.token + "x"} {
		for _, path := range []string{"/usage?user=alice", "/rules", "/alerts"} {
			resp := g.admin(t, "GET", path, auth, "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: %s, want 401", path, auth, resp.Status)
			}
		}
	}
	bearer := "Bearer " + g.token
	alice := g.client("sk-demo-alice")
	for i := range 3 {
		if _, err := alice.Chat.Completions.New(t.Context(), hi("demo-mini")); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	_, err := alice.Chat.Completions.New(t.Context(), hi("demo-mini"))
	apiError(t, err, http.StatusTooManyRequests)

	// A mistyped document is refused, naming the path; the old rules stay.
	bad := strings.Replace(string(defaultPolicy), "limit: 200000/m", "limit: 200000/minute", 1)
	if resp := g.admin(t, "PUT", "/rules", bearer, bad); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(resp.body, `"path":"/rules/5/limit"`) || !strings.Contains(resp.body, `"suggestion":"200000/m"`) {
		t.Errorf("bad document: %s %s, want 422 naming /rules/5/limit (team-tpm)", resp.Status, resp.body)
	}
	// A new document is a hot reload: demo-mini gets 6 a minute, with a
	// fresh counter since the rule changed.
	good := strings.Replace(string(defaultPolicy), "{model: demo-mini, rate_limit: {rpm: 3,", "{model: demo-mini, rate_limit: {rpm: 6,", 1)
	if resp := g.admin(t, "PUT", "/rules", bearer, good); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /rules: %s %s", resp.Status, resp.body)
	}
	for i := range 6 {
		if _, err := alice.Chat.Completions.New(t.Context(), hi("demo-mini")); err != nil {
			t.Fatalf("request %d after the reload: %v", i+1, err)
		}
	}
	_, err = alice.Chat.Completions.New(t.Context(), hi("demo-mini"))
	apiError(t, err, http.StatusTooManyRequests)

	// In shadow mode the rule still counts but refuses nothing.
	if resp := g.admin(t, "PUT", "/rules/model:demo-mini:rpm/mode", bearer, `{"mode":"shadow"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("mode toggle: %s %s", resp.Status, resp.body)
	}
	for i := range 3 {
		if _, err := alice.Chat.Completions.New(t.Context(), hi("demo-mini")); err != nil {
			t.Fatalf("request %d with the rule in shadow mode: %v", i+1, err)
		}
	}
	if u := g.usage("user", "alice"); u.Requests != 12 || u.Denials != 2 {
		t.Errorf("alice's usage %+v, want 12 requests and 2 denials", u)
	}
}

type adminResponse struct {
	*http.Response
	body string
}

// admin sends a request to the admin API.
func (g *gateway) admin(t *testing.T, method, path, auth, body string) adminResponse {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, g.adminURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return adminResponse{resp, string(b)}
}

// TestPrintedCommands runs the curl commands the gateway prints, as a
// reader would paste them, and checks that they show what they promise.
func TestPrintedCommands(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	g := startGateway(t)
	var cmds []string
	for line := range strings.Lines(g.out.String()) {
		if strings.HasPrefix(line, "for ") || strings.HasPrefix(line, "curl ") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 5 {
		t.Fatalf("%d commands printed, want 5:\n%s", len(cmds), g.out)
	}
	sh := func(cmd string) string {
		out, err := exec.CommandContext(t.Context(), "sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	if got := sh(cmds[0]); got != "200\n200\n200\n429\n" {
		t.Errorf("demo-mini loop printed %q, want 200 200 200 429", got)
	}
	if got := sh(cmds[1]); !strings.HasPrefix(got, "HTTP/1.1 429") || !strings.Contains(got, "Retry-After: ") {
		t.Errorf("curl -si printed:\n%s\nwant a 429 with Retry-After", got)
	}
	if got := regexp.MustCompile(` in \S+s`).ReplaceAllString(sh(cmds[2]), ""); got != "200\n200\n429\n" {
		t.Errorf("carol's streams printed %q, want 200 200 429", got)
	}
	if got := sh(cmds[3]); got != strings.Repeat("200\n", 6)+"429\n429\n" {
		t.Errorf("dave's loop printed %q, want six 200 then 429", got)
	}
	if !strings.Contains(g.out.String(), "budget alert: hobbyco-daily-budget reached 80%") {
		t.Errorf("no budget alert printed:\n%s", g.out)
	}
	if got := sh(cmds[4]); !strings.Contains(got, "dave") || !strings.Contains(got, "hobbyco") {
		t.Errorf("usage export printed %s, want rows for dave and hobbyco", got)
	}
}

// TestRedis runs the first scenario with the counters in a real Redis.
func TestRedis(t *testing.T) {
	addr := redistest.StartServer(t) // skips the test without redis-server
	g := startGateway(t, "-redis", addr)
	c := g.client("sk-demo-alice")
	for i := range 3 {
		if _, err := c.Chat.Completions.New(t.Context(), hi("demo-mini")); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	_, err := c.Chat.Completions.New(t.Context(), hi("demo-mini"))
	apiError(t, err, http.StatusTooManyRequests)
}

// lockedBuffer is a bytes.Buffer safe for the gateway's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
