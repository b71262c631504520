// Command grpc shows tollgate's gRPC server interceptor with a client
// that needs no rate-limit code of its own.
//
//	go run ./examples/grpc
//
// The server limits each API key to a few Greet calls a second. A call
// over the limit never reaches the service: the interceptor ends it
// trailers-only with RESOURCE_EXHAUSTED, a google.rpc.RetryInfo detail
// and the trailer grpc-retry-pushback-ms. The client's service config has
// a retry policy for RESOURCE_EXHAUSTED, so grpc-go waits exactly the
// pushback and tries again: the application sees every call succeed, a
// little later. A client without a retry policy gets the error, with
// RetryInfo saying how long to wait.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/grpclimit"
	"github.com/tollgate-go/tollgate/store/memory"
)

// retryOnPushback is the client's service config: retry RESOURCE_EXHAUSTED
// up to 3 more times. The backoff is short because the server's pushback,
// when it sends one, replaces it.
const retryOnPushback = `{"methodConfig": [{
	"name": [{"service": "` + greeterService + `"}],
	"retryPolicy": {
		"maxAttempts": 4,
		"initialBackoff": "0.01s", "maxBackoff": "0.01s", "backoffMultiplier": 1,
		"retryableStatusCodes": ["RESOURCE_EXHAUSTED"]
	}
}]}`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run starts the server, makes the calls, and prints what happened.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:0", "address of the server")
	calls := fs.Int("calls", 6, "calls the client makes, as fast as it can")
	rate := fs.Int64("rate", 4, "Greet calls each API key may make per second")
	burst := fs.Int64("burst", 2, "calls each API key may make at once")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// The server: every Greet call is checked per API key (the bearer
	// token of the "authorization" metadata) and method.
	lim, err := limiter.New(memory.New(), []limiter.Rule{{
		Name:      "greet-per-key",
		Algorithm: algorithms.GCRA, Limit: *rate, Period: time.Second, Burst: *burst,
		By: []dimensions.Dimension{dimensions.APIKey, dimensions.Route},
	}})
	if err != nil {
		return err
	}
	svc := new(greeter)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(grpclimit.UnaryServerInterceptor(lim)))
	svc.register(srv)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer srv.Stop()
	fmt.Fprintf(stdout, "greeter on %s: each API key may call Greet %d times a second, %d at once\n", ln.Addr(), *rate, *burst)

	// The client: a retry policy in its service config, nothing else.
	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(retryOnPushback),
		grpc.WithStatsHandler(attempts{}), // only to print the attempts
	)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer sk-demo-alice")
	for i := 1; i <= *calls; i++ {
		callCtx, tr := traced(ctx)
		start := time.Now()
		reply, err := greet(callCtx, conn, "alice")
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		fmt.Fprintf(stdout, "call %d: %q in %v, %s\n", i, reply, time.Since(start).Round(time.Millisecond), tr)
	}
	fmt.Fprintf(stdout, "the service ran %d times for %d calls\n", svc.calls.Load(), *calls)

	// A client without a retry policy sees the denial itself.
	plain, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer plain.Close()
	_, err = greet(ctx, plain, "alice")
	fmt.Fprintf(stdout, "without a retry policy: %v (%s)\n", status.Code(err), retryDelay(err))
	return nil
}

func (t *trace) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.attempts == 1 {
		return "1 attempt"
	}
	waits := make([]string, len(t.pushbacks))
	for i, d := range t.pushbacks {
		waits[i] = d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%d attempts; the server asked to wait %s", t.attempts, strings.Join(waits, ", then "))
}

// retryDelay describes the RetryInfo detail of err.
func retryDelay(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return "RetryInfo says retry in " + ri.RetryDelay.AsDuration().String()
		}
	}
	return "no RetryInfo"
}
