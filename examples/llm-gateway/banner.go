package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// banner is what the gateway prints at start.
type banner struct {
	Gateway, Admin, Token, Upstream, Store, Policy string
}

// printBanner prints where the gateway listens and commands that show
// its limits at work. The test runs these very commands.
func printBanner(w io.Writer, b banner) {
	gw := "http://" + b.Gateway + "/v1/chat/completions"
	post := func(key, body string) string {
		return fmt.Sprintf("%s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '%s'", gw, key, body)
	}
	hi := `"messages":[{"role":"user","content":"Say hi"}]`
	lines := []string{
		fmt.Sprintf("llm-gateway listening on http://%s (upstream %s, store %s, policy %s)", b.Gateway, b.Upstream, b.Store, b.Policy),
		fmt.Sprintf("admin API on http://%s, token %s", b.Admin, b.Token),
		"API keys: sk-demo-alice, sk-demo-bob (team research), sk-demo-carol (trial), sk-demo-dave (tenant hobbyco)",
		"",
		"# demo-mini allows 3 requests a minute: the 4th gets 429",
		"for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' " + post("sk-demo-alice", `{"model":"demo-mini",`+hi+`}`) + "; done",
		"# the headers of that 429: Retry-After, RateLimit, RateLimit-Policy, x-ratelimit-*",
		"curl -si " + post("sk-demo-alice", `{"model":"demo-mini",`+hi+`}`) + "; echo",
		"# carol's trial plan has 500 output tokens a day and each answer has 300: the 2nd stream crosses the quota and completes, the 3rd is refused at once",
		"for i in 1 2 3; do curl -sN -o /dev/null -w '%{http_code} in %{time_total}s\\n' " + post("sk-demo-carol", `{"model":"gpt-4o-mini","stream":true,`+hi+`}`) + "; done",
		"# hobbyco's budget is 0.02 USD a day and each of these costs about 0.003: the gateway prints a budget alert at 80%, then answers 429",
		"for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -w '%{http_code}\\n' " + post("sk-demo-dave", `{"model":"gpt-4o","max_tokens":300,`+hi+`}`) + "; done",
		"# today's usage by user, tenant, team, API key and model",
		fmt.Sprintf("curl -s 'http://%s/usage/export?format=csv' -H 'Authorization: Bearer %s'", b.Admin, b.Token),
		"",
	}
	fmt.Fprint(w, strings.Join(lines, "\n")+"\n")
}

// syncWriter serializes writes from the request goroutines (alerts, logs).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
