package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gateway is a gateway started in-process by run, in front of a mock MCP
// server that counts the requests reaching it.
type gateway struct {
	t        *testing.T
	endpoint string
	server   *mockMCP
	out      *lockedBuffer
	lastID   int
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	mcp := new(mockMCP)
	srv := httptest.NewServer(mcp)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	out := new(lockedBuffer)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-upstream", srv.URL + "/mcp"}, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	re := regexp.MustCompile(`listening on (http://\S+) `)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return &gateway{t: t, endpoint: m[1], server: mcp, out: out}
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

type rpcResponse struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"error"`
}

// rpc sends one JSON-RPC request as key and returns the HTTP response and
// the decoded JSON-RPC response.
func (g *gateway) rpc(key, method string, params any) (*http.Response, rpcResponse) {
	g.t.Helper()
	g.lastID++
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": g.lastID, "method": method, "params": params})
	req, _ := http.NewRequestWithContext(g.t.Context(), "POST", g.endpoint, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r rpcResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		g.t.Fatalf("%s: %v", method, err)
	}
	if r.ID != g.lastID {
		g.t.Errorf("%s: response id %d, want %d", method, r.ID, g.lastID)
	}
	return resp, r
}

// callTool calls a tool and fails the test unless the outcome is want:
// "ok", or the name of the rule that must refuse it.
func (g *gateway) callTool(key, tool string, args map[string]any, want string) *http.Response {
	g.t.Helper()
	resp, r := g.rpc(key, "tools/call", map[string]any{"name": tool, "arguments": args})
	switch {
	case want == "ok" && (resp.StatusCode != http.StatusOK || r.Error != nil || r.Result == nil):
		g.t.Fatalf("%s %s: %s %+v, want a result", key, tool, resp.Status, r.Error)
	case want != "ok" && (resp.StatusCode != http.StatusTooManyRequests || r.Error == nil || r.Error.Data["rule"] != want):
		g.t.Fatalf("%s %s: %s %+v %s, want 429 by %s", key, tool, resp.Status, r.Error, r.Result, want)
	case want != "ok":
		// The rules are sliding windows of at most an hour: a counter forced
		// past its limit (the delayed result-token rule) may need the rest
		// of its window and part of the next one, so up to two hours,
		// depending on the time of day the test runs.
		s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || s < 1 || s > 2*3600 || r.Error.Code != -32000 {
			g.t.Errorf("%s %s: Retry-After %q, code %d", key, tool, resp.Header.Get("Retry-After"), r.Error.Code)
		}
	}
	return resp
}

func TestToolCallsLimitedByUserTenantAndTool(t *testing.T) {
	g := startGateway(t)
	echo := map[string]any{"text": "hello"}
	search := map[string]any{"query": "rate limits"}

	// Methods other than tools/call pass unlimited.
	if resp, r := g.rpc("sk-mcp-alice", "initialize", map[string]any{}); resp.StatusCode != 200 || r.Result == nil {
		t.Fatalf("initialize: %s", resp.Status)
	}
	for range 12 {
		if resp, r := g.rpc("sk-mcp-alice", "tools/list", map[string]any{}); resp.StatusCode != 200 || r.Error != nil {
			t.Fatalf("tools/list: %s %+v", resp.Status, r.Error)
		}
	}
	// By tool and user: 2 web searches a minute each.
	g.callTool("sk-mcp-alice", "web_search", search, "ok")
	g.callTool("sk-mcp-alice", "web_search", search, "ok")
	g.callTool("sk-mcp-alice", "web_search", search, "search-per-user")
	g.callTool("sk-mcp-bob", "web_search", search, "ok")
	// By user: 6 calls a minute (the refused search did not count).
	for range 4 {
		g.callTool("sk-mcp-alice", "echo", echo, "ok")
	}
	g.callTool("sk-mcp-alice", "echo", echo, "user-rpm")
	// By tenant: acme's 10 a minute, shared by alice (6) and bob.
	for range 3 {
		g.callTool("sk-mcp-bob", "echo", echo, "ok")
	}
	g.callTool("sk-mcp-bob", "echo", echo, "tenant-rpm")
	// Another tenant is not affected.
	g.callTool("sk-mcp-erin", "web_search", search, "ok")

	if got, want := g.server.Calls(), int64(1+12+2+1+4+3+1); got != want {
		t.Errorf("the MCP server got %d requests, want %d: refused calls must not reach it", got, want)
	}
}

// TestResultTokenBudget: globex may receive 3000 tokens of tool results
// an hour. Each page is about 1000 tokens: the third call crosses the
// budget and still returns its result; the fourth is refused, whatever
// its size, without reaching the server.
func TestResultTokenBudget(t *testing.T) {
	g := startGateway(t)
	page := map[string]any{"url": "https://example.com", "pages": 1}
	var total int64
	for i := range 3 {
		resp := g.callTool("sk-mcp-erin", "fetch_page", page, "ok")
		n, err := strconv.ParseInt(resp.Header.Get(resultTokensHeader), 10, 64)
		if err != nil || n < 900 || n > 1200 {
			t.Fatalf("call %d: %s %q, want about 1000", i+1, resultTokensHeader, resp.Header.Get(resultTokensHeader))
		}
		total += n
	}
	if total < 3000 {
		t.Fatalf("three pages were %d tokens; the test needs them to cross 3000", total)
	}
	calls := g.server.Calls()
	g.callTool("sk-mcp-erin", "echo", map[string]any{"text": "hi"}, "tenant-result-tokens")
	if got := g.server.Calls(); got != calls {
		t.Errorf("the refused call reached the MCP server")
	}
	// The budget is globex's; acme's calls go on.
	g.callTool("sk-mcp-alice", "fetch_page", page, "ok")
}

func TestUnknownKey(t *testing.T) {
	g := startGateway(t)
	req, _ := http.NewRequest("POST", g.endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer sk-nobody")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || g.server.Calls() != 0 {
		t.Errorf("%s, %d calls upstream: want 401 and none", resp.Status, g.server.Calls())
	}
}

// TestPrintedCommands runs the curl commands the gateway prints.
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
	if len(cmds) != 3 {
		t.Fatalf("%d commands printed, want 3:\n%s", len(cmds), g.out)
	}
	sh := func(cmd string) string {
		out, err := exec.CommandContext(t.Context(), "sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	if got := sh(cmds[0]); got != "200\n200\n429\n" {
		t.Errorf("web_search loop printed %q, want 200 200 429", got)
	}
	if got := sh(cmds[1]); !strings.HasPrefix(got, "HTTP/1.1 429") || !strings.Contains(got, "Retry-After: ") ||
		!strings.Contains(got, `"rule":"search-per-user"`) {
		t.Errorf("curl -si printed:\n%s\nwant a 429 with Retry-After naming search-per-user", got)
	}
	if got := sh(cmds[2]); got != "200\n200\n200\n429\n" {
		t.Errorf("fetch_page loop printed %q, want 200 200 200 429", got)
	}
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
