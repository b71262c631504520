// Command llm-gateway is an OpenAI-compatible gateway that limits what its
// callers may spend before it forwards their requests to a provider.
//
//	go run ./examples/llm-gateway                        # a built-in mock provider
//	go run ./examples/llm-gateway -upstream https://api.openai.com   # $OPENAI_API_KEY
//	go run ./examples/llm-gateway -redis 127.0.0.1:6379  # counters shared by a fleet
//
// Every request under /v1/ passes through, in order: authentication (an API
// key of keys.go names the user, tenant, team and tier), the tollgate
// middleware in LLM mode (one check of every rule of policy.yaml that
// matches: per-model RPM and TPM, the user's daily output tokens, the
// tenant's daily budget in USD, the key's share of its team's TPM), and an
// httputil.ReverseProxy. The middleware reserves the request's estimated
// tokens and cost, streams the response through a usage meter without
// buffering it, and settles the reservation with the usage the provider
// reported.
//
// A second port serves the admin API (package middleware/admin: rules,
// modes, counters, usage from the ledger), protected by a token printed at
// start. At start the gateway prints curl commands that show its limits.
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
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
	redisstore "github.com/tollgate-go/tollgate/store/redis"
)

//go:embed policy.yaml
var defaultPolicy []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run starts the gateway and serves until ctx is done.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("llm-gateway", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8080", "address of the gateway")
	adminAddr := fs.String("admin-addr", "127.0.0.1:8081", "address of the admin API")
	upstream := fs.String("upstream", "", "base URL of an OpenAI-compatible provider, without /v1 (its key in $OPENAI_API_KEY); empty starts a mock")
	redisAddr := fs.String("redis", "", "Redis host:port for the counters; empty keeps them in memory")
	policyFile := fs.String("policy", "", "policy file to load and watch for changes; empty uses the embedded policy.yaml")
	chunkDelay := fs.Duration("chunk-delay", 20*time.Millisecond, "the mock provider's delay between stream chunks")
	verbose := fs.Bool("v", false, "log every settlement and rejection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := &syncWriter{w: stdout}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(out, nil))
	}

	// The store: in memory, or Redis for a fleet of gateways.
	var s store.Store = memory.New()
	storeName := "memory"
	if *redisAddr != "" {
		// The context's deadline bounds each call only with ContextTimeoutEnabled.
		rdb := goredis.NewClient(&goredis.Options{Addr: *redisAddr, ContextTimeoutEnabled: true, DialerRetries: 1})
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis %s: %w", *redisAddr, err)
		}
		s, storeName = redisstore.New(rdb, redisstore.WithKeyPrefix("llm-gateway:")), "redis "+*redisAddr
	}
	defer s.Close()

	// The limiter, its rules from the policy: the embedded policy.yaml, or
	// a file that is watched for changes.
	usage, err := newLedger(s)
	if err != nil {
		return err
	}
	alerts := &budgetAlerts{w: out}
	lim, err := limiter.New(s, nil,
		limiter.WithLogger(logger),
		limiter.WithRecorder(usage),               // per user, tenant, team, key and model
		limiter.WithThresholdHook(alerts.crossed), // 80% and 100% of every budget
	)
	if err != nil {
		return err
	}
	reloader := policy.NewReloader(lim, policy.WithLogger(logger))
	source := "embedded policy.yaml"
	if *policyFile == "" {
		err = reloader.Apply(defaultPolicy)
	} else {
		source = *policyFile
		err = reloader.ApplyFile(*policyFile)
	}
	if err != nil {
		return err // one line per problem, each with its JSON path
	}
	if *policyFile != "" {
		go reloader.Watch(ctx, *policyFile) // valid edits apply at once, counters kept
	}

	// The provider: the one given, or a mock on a port of its own.
	target, providerKey := *upstream, os.Getenv("OPENAI_API_KEY")
	if target == "" {
		mock, err := serve(ctx, "127.0.0.1:0", &mockUpstream{chunkDelay: *chunkDelay})
		if err != nil {
			return err
		}
		target, providerKey = "http://"+mock.String(), ""
	}
	targetURL, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targetURL)
			// The gateway's keys are not the provider's.
			pr.Out.Header.Del("Authorization")
			if providerKey != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+providerKey)
			}
			// Let the transport ask for gzip and decode it, so that the
			// usage meter reads plain bytes (br and zstd carry no usage
			// it can read).
			pr.Out.Header.Del("Accept-Encoding")
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("upstream", "error", err)
			openAIError(w, http.StatusBadGateway, "upstream_error", "the provider could not be reached")
		},
	}

	// The limiter in front of the proxy, in LLM mode.
	limits := httplimit.New(lim,
		httplimit.WithIdentity(identity),
		httplimit.WithDenyHandler(deny),
		httplimit.WithLLM(),
		httplimit.WithUsageInjection(),          // meter streams that did not ask for usage
		httplimit.WithDefaultMaxOutput(1024),    // reserved when a request names no max_tokens
		httplimit.WithCost(priceWith(reloader)), // for the budgets, in micro-USD
		httplimit.WithOpenAIHeaders(),           // x-ratelimit-*, which OpenAI SDKs read
		httplimit.WithLogger(logger),
	)
	mux := http.NewServeMux()
	mux.Handle("/v1/", authenticate(limits.Handler(proxy)))
	gw, err := serve(ctx, *addr, mux)
	if err != nil {
		return err
	}

	// The admin API on its own port, behind a random token.
	token := randomToken()
	api, err := adminAPI(lim, reloader, usage, alerts, token, logger)
	if err != nil {
		return err
	}
	adm, err := serve(ctx, *adminAddr, api)
	if err != nil {
		return err
	}

	printBanner(out, banner{
		Gateway: gw.String(), Admin: adm.String(), Token: token,
		Upstream: target, Store: storeName, Policy: source,
	})
	<-ctx.Done()
	return nil
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
