// Command mcp-gateway forwards MCP JSON-RPC messages to an MCP server and
// limits tool calls per user, per tenant and per tool, and by the size of
// the tool results in tokens.
//
//	go run ./examples/mcp-gateway                                    # a built-in mock MCP server
//	go run ./examples/mcp-gateway -upstream http://127.0.0.1:3000/mcp
//
// Every tools/call is checked against the rules of policy.yaml in one
// store call, all or nothing, before it is forwarded. The result is read
// whole (at most 8 MiB; a server answering with an SSE stream is read to
// its end, so progress notifications arrive with the result), its tokens
// counted with tokens.PayloadTokens, and the tenant's result-token budget
// charged with them before the result goes back: the call that crosses
// the budget completes, the next is refused and never reaches the server.
// Other methods (initialize, tools/list, notifications) pass unlimited.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/store/memory"
)

//go:embed policy.yaml
var policyYAML []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run starts the gateway and serves until ctx is done.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mcp-gateway", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8090", "address of the gateway")
	upstream := fs.String("upstream", "", "URL of the MCP server's endpoint; empty starts a mock")
	verbose := fs.Bool("v", false, "log refusals")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stdout, nil))
	}

	pol, err := policy.Load(policyYAML, policy.WithLogger(logger))
	if err != nil {
		return err
	}
	s := memory.New()
	defer s.Close()
	lim, err := limiter.New(s, pol.Rules(), limiter.WithLogger(logger))
	if err != nil {
		return err
	}

	if *upstream == "" {
		mock, err := serve(ctx, "127.0.0.1:0", new(mockMCP))
		if err != nil {
			return err
		}
		*upstream = "http://" + mock.String() + "/mcp"
	}
	target, err := url.Parse(*upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", authenticate(newToolGateway(lim, target, logger)))
	gw, err := serve(ctx, *addr, mux)
	if err != nil {
		return err
	}
	printBanner(stdout, "http://"+gw.String()+"/mcp", *upstream)
	<-ctx.Done()
	return nil
}

// printBanner prints where the gateway listens and commands to try. The
// test runs these very commands.
func printBanner(w io.Writer, endpoint, upstream string) {
	call := func(key, tool, args string) string {
		return fmt.Sprintf(`%s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":%s}}'`,
			endpoint, key, tool, args)
	}
	search := call("sk-mcp-alice", "web_search", `{"query":"rate limits"}`)
	lines := []string{
		fmt.Sprintf("mcp-gateway listening on %s (MCP server %s)", endpoint, upstream),
		"API keys: sk-mcp-alice, sk-mcp-bob (tenant acme), sk-mcp-erin (tenant globex)",
		"",
		"# web_search allows each user 2 calls a minute: the 3rd gets 429",
		"for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code}\\n' " + search + "; done",
		"# the refusal: Retry-After and a JSON-RPC error naming the rule",
		"curl -si " + search,
		"# globex may receive 3000 tokens of tool results an hour and a page is about 1000 (see its Tollgate-Result-Tokens header): the 3rd call crosses the budget and completes, the 4th is refused",
		"for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' " + call("sk-mcp-erin", "fetch_page", `{"url":"https://example.com","pages":1}`) + "; done",
		"",
	}
	fmt.Fprint(w, strings.Join(lines, "\n")+"\n")
}

// serve listens on addr and serves h until ctx is done.
func serve(ctx context.Context, addr string, h http.Handler) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	})
	return ln.Addr(), nil
}
