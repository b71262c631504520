package grpclimit_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/grpclimit"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

const checkMethod = "/grpc.health.v1.Health/Check"

// flakyStore is a memory store that fails on demand.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func (s *flakyStore) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if s.down.Load() {
		return errors.New("test store: down")
	}
	return s.Store.Apply(ctx, now, ops, results)
}

func newLimiter(t *testing.T, s store.Store, rules ...limiter.Rule) *limiter.Limiter {
	t.Helper()
	if s == nil {
		s = memory.New()
	}
	l, err := limiter.New(s, rules, limiter.WithCircuitBreaker(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// attempt is one call as the server saw it, outside the limiter.
type attempt struct {
	arrived, done time.Time
	err           error
}

// recorder is an outer server interceptor that logs attempts.
type recorder struct {
	mu sync.Mutex
	a  []attempt
}

func (r *recorder) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	at := attempt{arrived: time.Now()}
	resp, err := h(ctx, req)
	at.done, at.err = time.Now(), err
	r.mu.Lock()
	r.a = append(r.a, at)
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) all() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.a...)
}

// countingHealth counts the calls that reach the service.
type countingHealth struct {
	*health.Server
	calls atomic.Int32
}

func (h *countingHealth) Check(ctx context.Context, in *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	return h.Server.Check(ctx, in)
}

func (h *countingHealth) Watch(in *healthpb.HealthCheckRequest, s healthpb.Health_WatchServer) error {
	h.calls.Add(1)
	return h.Server.Watch(in, s)
}

// serve starts a real grpc-go server on a loopback port and returns a
// client connection to it.
func serve(t *testing.T, srvOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) (*grpc.ClientConn, *countingHealth) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(srvOpts...)
	svc := &countingHealth{Server: health.NewServer()}
	healthpb.RegisterHealthServer(srv, svc)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, svc
}

func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

func details(t *testing.T, err error) (*errdetails.RetryInfo, *errdetails.QuotaFailure) {
	t.Helper()
	var ri *errdetails.RetryInfo
	var qf *errdetails.QuotaFailure
	for _, d := range status.Convert(err).Details() {
		switch v := d.(type) {
		case *errdetails.RetryInfo:
			ri = v
		case *errdetails.QuotaFailure:
			qf = v
		}
	}
	return ri, qf
}

func TestUnaryDenialIsTrailersOnlyWithDetails(t *testing.T) {
	rule := limiter.Rule{Name: "per-key", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute,
		By: []dimensions.Dimension{dimensions.APIKey, dimensions.Route}}
	l := newLimiter(t, nil, rule)
	conn, svc := serve(t, []grpc.ServerOption{grpc.ChainUnaryInterceptor(grpclimit.UnaryServerInterceptor(l))})
	c := healthpb.NewHealthClient(conn)
	ctx := withKey(t.Context(), "sk-1")
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	var hdr, tr metadata.MD
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr), grpc.Trailer(&tr))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second call: %v, want RESOURCE_EXHAUSTED", err)
	}
	if n := svc.calls.Load(); n != 1 {
		t.Errorf("service called %d times, want 1", n)
	}
	ri, qf := details(t, err)
	if ri == nil || ri.RetryDelay.AsDuration() <= 0 || ri.RetryDelay.AsDuration() > time.Minute {
		t.Errorf("RetryInfo %v, want a delay in (0, 1m]", ri)
	}
	if qf == nil || len(qf.Violations) != 1 || qf.Violations[0].Subject != "rule:per-key" {
		t.Errorf("QuotaFailure %v, want a violation of rule:per-key", qf)
	}
	pb := tr.Get(grpclimit.PushbackKey)
	ms, perr := strconv.Atoi(firstOr(pb))
	if perr != nil || ri == nil || time.Duration(ms)*time.Millisecond < ri.RetryDelay.AsDuration() {
		t.Errorf("pushback %q, want the RetryInfo delay %v in ms, rounded up", pb, ri.RetryDelay.AsDuration())
	}
	// Trailers-only: the server sent no header frame, only trailers.
	if len(hdr) != 0 {
		t.Errorf("header metadata %v, want none (trailers-only)", hdr)
	}
	// Another key, or the same key on another method, has its own counter.
	if _, err := c.Check(withKey(t.Context(), "sk-2"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("other key: %v", err)
	}
}

func firstOr(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// TestRetryPolicyWaitsForPushback: a client whose service config retries
// RESOURCE_EXHAUSTED with a 1ms backoff would fail three times in a row
// against a limit of one call per second; it succeeds because grpc-go
// waits the pushback the server sent.
func TestRetryPolicyWaitsForPushback(t *testing.T) {
	rule := limiter.Rule{Name: "per-key", Algorithm: algorithms.GCRA, Limit: 1, Period: time.Second,
		By: []dimensions.Dimension{dimensions.APIKey}}
	l := newLimiter(t, nil, rule)
	var rec recorder
	conn, svc := serve(t,
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(rec.unary, grpclimit.UnaryServerInterceptor(l))},
		grpc.WithDefaultServiceConfig(`{"methodConfig":[{"name":[{"service":"grpc.health.v1.Health"}],
			"retryPolicy":{"maxAttempts":3,"initialBackoff":"0.001s","maxBackoff":"0.001s",
			"backoffMultiplier":1,"retryableStatusCodes":["RESOURCE_EXHAUSTED"]}}]}`))
	c := healthpb.NewHealthClient(conn)
	ctx := withKey(t.Context(), "sk-retry")
	for i := range 2 {
		if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	a := rec.all()
	if len(a) != 3 || a[0].err != nil || status.Code(a[1].err) != codes.ResourceExhausted || a[2].err != nil {
		t.Fatalf("attempts %+v, want ok, RESOURCE_EXHAUSTED, ok", a)
	}
	ri, _ := details(t, a[1].err)
	if waited := a[2].arrived.Sub(a[1].done); waited < ri.RetryDelay.AsDuration() {
		t.Errorf("retried after %v, before the pushback of %v", waited, ri.RetryDelay.AsDuration())
	}
	if n := svc.calls.Load(); n != 2 {
		t.Errorf("service called %d times, want 2", n)
	}
}

func TestStreamDenialAndNeverRetry(t *testing.T) {
	rule := limiter.Rule{Name: "no-watch", Algorithm: algorithms.FixedWindow, Limit: 0, Period: time.Minute,
		When: limiter.Equal(dimensions.Route, "/grpc.health.v1.Health/Watch")}
	l := newLimiter(t, nil, rule)
	conn, svc := serve(t, []grpc.ServerOption{grpc.ChainStreamInterceptor(grpclimit.StreamServerInterceptor(l))})
	st, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Recv: %v, want RESOURCE_EXHAUSTED", err)
	}
	if ri, qf := details(t, err); ri != nil || qf == nil {
		t.Errorf("details %v %v: a call that can never pass carries no RetryInfo", ri, qf)
	}
	if got := st.Trailer().Get(grpclimit.PushbackKey); len(got) != 1 || got[0] != "-1" {
		t.Errorf("pushback %q, want -1 (do not retry)", got)
	}
	if n := svc.calls.Load(); n != 0 {
		t.Errorf("service called %d times", n)
	}
}

func TestStoreFailureFailClosedIsUnavailable(t *testing.T) {
	s := &flakyStore{Store: memory.New()}
	rule := limiter.Rule{Name: "strict", Limit: 10, Period: time.Minute, OnStoreError: limiter.FailDeny}
	l := newLimiter(t, s, rule)
	conn, _ := serve(t, []grpc.ServerOption{grpc.ChainUnaryInterceptor(grpclimit.UnaryServerInterceptor(l))})
	s.down.Store(true)
	var tr metadata.MD
	_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.Trailer(&tr))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("%v, want UNAVAILABLE", err)
	}
	if ri, _ := details(t, err); ri == nil || ri.RetryDelay.AsDuration() != time.Second {
		t.Errorf("RetryInfo %v, want 1s", ri)
	}
	if got := tr.Get(grpclimit.PushbackKey); len(got) != 1 || got[0] != "1000" {
		t.Errorf("pushback %q, want 1000", got)
	}
}

type forbidden struct{}

func (forbidden) Error() string { return "model not allowed" }
func (forbidden) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, "model not allowed")
}

func TestGuardsAndIdentity(t *testing.T) {
	rules := []limiter.Rule{
		{Name: "tenant-guard", Guard: func(r *limiter.Request) error {
			switch r.Tenant {
			case "banned":
				return forbidden{}
			case "odd":
				return errors.New("odd tenant")
			}
			return nil
		}},
		{Name: "per-user", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute, By: []dimensions.Dimension{dimensions.User}},
	}
	l := newLimiter(t, nil, rules...)
	ident := grpclimit.WithIdentity(func(_ context.Context, method string, md metadata.MD) grpclimit.Identity {
		return grpclimit.Identity{User: firstOr(md.Get("x-user")), Tenant: firstOr(md.Get("x-tenant"))}
	})
	conn, _ := serve(t, []grpc.ServerOption{grpc.ChainUnaryInterceptor(grpclimit.UnaryServerInterceptor(l, ident))})
	c := healthpb.NewHealthClient(conn)
	call := func(user, tenant string) error {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-user", user, "x-tenant", tenant)
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call("u1", "banned"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("banned tenant: %v", err)
	}
	if err := call("u1", "odd"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("guard error: %v", err)
	}
	if err := call("u1", "acme"); err != nil {
		t.Errorf("first call of u1: %v", err)
	}
	if err := call("u1", "acme"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("second call of u1: %v", err)
	}
	if err := call("u2", "acme"); err != nil {
		t.Errorf("u2: %v", err)
	}
}

func TestClientInterceptors(t *testing.T) {
	rule := limiter.Rule{Name: "client-side", Algorithm: algorithms.GCRA, Limit: 1, Period: time.Minute}
	l := newLimiter(t, nil, rule)
	conn, svc := serve(t, nil,
		grpc.WithChainUnaryInterceptor(grpclimit.UnaryClientInterceptor(l)),
		grpc.WithChainStreamInterceptor(grpclimit.StreamClientInterceptor(l)))
	c := healthpb.NewHealthClient(conn)
	if _, err := c.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check(t.Context(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second call: %v", err)
	}
	if _, err := c.Watch(t.Context(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("stream: %v", err)
	}
	if n := svc.calls.Load(); n != 1 {
		t.Errorf("server saw %d calls, want 1: denied calls are never sent", n)
	}
}

// TestClientWaitSynctest: with WithWait the client interceptor waits, in
// a synctest bubble's fake time, exactly as long as the limiter says, and
// gives up at once when the call's deadline is nearer.
func TestClientWaitSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rule := limiter.Rule{Name: "hourly", Algorithm: algorithms.GCRA, Limit: 1, Period: time.Hour}
		l, err := limiter.New(memory.New(), []limiter.Rule{rule})
		if err != nil {
			t.Fatal(err)
		}
		ic := grpclimit.UnaryClientInterceptor(l, grpclimit.WithWait())
		sent := 0
		invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
			sent++
			return nil
		}
		start := time.Now()
		for i := range 2 {
			if err := ic(t.Context(), checkMethod, nil, nil, nil, invoker); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if waited := time.Since(start); sent != 2 || waited != time.Hour {
			t.Errorf("sent %d after %v, want 2 after exactly 1h", sent, waited)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
		defer cancel()
		start = time.Now()
		err = ic(ctx, checkMethod, nil, nil, nil, invoker)
		if status.Code(err) != codes.ResourceExhausted || time.Since(start) != 0 || sent != 2 {
			t.Errorf("deadline nearer than the wait: %v after %v, want RESOURCE_EXHAUSTED at once", err, time.Since(start))
		}
	})
}

func TestRateLimitAdapter(t *testing.T) {
	rule := limiter.Rule{Name: "per-key", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute,
		By: []dimensions.Dimension{dimensions.APIKey}}
	var adapter ratelimit.Limiter = grpclimit.NewRateLimiter(newLimiter(t, nil, rule))
	conn, _ := serve(t, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ratelimit.UnaryServerInterceptor(adapter))})
	c := healthpb.NewHealthClient(conn)
	ctx := withKey(t.Context(), "sk-adapter")
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("%v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := c.Check(withKey(t.Context(), "sk-other"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("other key: %v", err)
	}
}

func TestStatus(t *testing.T) {
	rule := limiter.Rule{Name: "r", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Minute}
	l := newLimiter(t, nil, rule)
	l.Check(t.Context(), &limiter.Request{})
	d := l.Check(t.Context(), &limiter.Request{})
	st := grpclimit.Status(&d)
	if st.Code() != codes.ResourceExhausted || len(st.Details()) != 2 {
		t.Errorf("status %v with %d details", st, len(st.Details()))
	}
	_ = checkMethod
}
