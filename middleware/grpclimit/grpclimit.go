package grpclimit

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
)

// PushbackKey is the trailer that tells grpc-go's retry policy how long to
// wait before retrying (gRFC A6): milliseconds, or a negative value for
// "do not retry".
const PushbackKey = "grpc-retry-pushback-ms"

// side says whether a check runs in a server or a client interceptor.
type side bool

const (
	server side = true
	client side = false
)

// reqPool recycles limiter requests: Check takes a pointer, which would
// otherwise cost an allocation per call.
var reqPool = sync.Pool{New: func() any { return new(limiter.Request) }}

// release clears req and returns it to the pool.
func release(req *limiter.Request) {
	*req = limiter.Request{}
	reqPool.Put(req)
}

// request builds the limiter request of a call: the method name, the API
// key and any identity from the metadata, and, on a server, the peer's
// address. The caller releases it.
func (c *config) request(ctx context.Context, method string, s side) *limiter.Request {
	var md metadata.MD
	if s == server {
		md, _ = metadata.FromIncomingContext(ctx)
	} else {
		md, _ = metadata.FromOutgoingContext(ctx)
	}
	req := reqPool.Get().(*limiter.Request)
	req.Header = md
	req.Method = method
	req.Route = method
	req.APIKey = apiKey(md)
	if s == server {
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			req.ClientIP = hostOf(p.Addr.String())
		}
	}
	if c.identity != nil {
		id := c.identity(ctx, method, md)
		req.User, req.Tenant, req.Identity, req.Custom = id.User, id.Tenant, id.Claims, id.Custom
	}
	return req
}

// apiKey returns the key of "authorization: Bearer <key>", else of
// x-api-key.
func apiKey(md metadata.MD) string {
	if v := md["authorization"]; len(v) > 0 && len(v[0]) > 7 && strings.EqualFold(v[0][:7], "bearer ") {
		if k := strings.TrimSpace(v[0][7:]); k != "" {
			return k
		}
	}
	if v := md["x-api-key"]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.TrimSuffix(strings.TrimPrefix(addr[:i], "["), "]")
	}
	return addr
}

// check decides a call, waiting for capacity when asked to (clients only).
func (c *config) check(ctx context.Context, l *limiter.Limiter, req *limiter.Request, wait bool) limiter.Decision {
	if wait {
		d, _ := l.Wait(ctx, req)
		return d
	}
	return l.Check(ctx, req)
}

// deny logs a denial and returns its status error.
func (c *config) deny(ctx context.Context, req *limiter.Request, d *limiter.Decision) error {
	st := c.status(d)
	if c.logger.Enabled(ctx, slog.LevelInfo) {
		rule := ""
		if d.Limiting.Rule != nil {
			rule = d.Limiting.Rule.Name
		}
		c.logger.LogAttrs(ctx, slog.LevelInfo, "tollgate: call rejected",
			slog.String("method", req.Method),
			slog.String("user", req.User),
			slog.String("tenant", req.Tenant),
			slog.String("rule", rule),
			slog.String("code", st.Code().String()),
			slog.Duration("retry_after", d.RetryAfter))
	}
	return st.Err()
}

// Status returns the status a denial is answered with, with default
// options; see the package documentation.
func Status(d *limiter.Decision) *status.Status {
	c := defaultConfig()
	return c.status(d)
}

func (c *config) status(d *limiter.Decision) *status.Status {
	lim := &d.Limiting
	name := ""
	if lim.Rule != nil {
		name = lim.Rule.Name
	}
	var st *status.Status
	switch {
	case lim.StoreError:
		st = status.New(codes.Unavailable, "tollgate: rate limiter unavailable")
		if s, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(c.unavailable)}); err == nil {
			st = s
		}
		return st
	case lim.Err != nil:
		var gs interface{ GRPCStatus() *status.Status }
		if errors.As(lim.Err, &gs) {
			return gs.GRPCStatus()
		}
		return status.New(codes.InvalidArgument, "tollgate: "+lim.Err.Error())
	}
	never := lim.Reason == algorithms.ReasonExceedsCapacity
	msg := "tollgate: rate limit " + strconv.Quote(name) + " exceeded"
	desc := "limit of " + strconv.FormatInt(lim.Limit, 10) + " " + unitName(lim.Rule)
	if never {
		msg += "; the call exceeds its capacity and will never be admitted"
	} else {
		msg += ", retry in " + retryAfter(d).String()
	}
	st = status.New(codes.ResourceExhausted, msg)
	details := []protoadapt.MessageV1{&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
		Subject: "rule:" + name, Description: desc,
	}}}}
	if !never {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter(d))})
	}
	if s, err := st.WithDetails(details...); err == nil {
		st = s
	}
	return st
}

// retryAfter is the wait a denial advertises: the decision's, at least
// 1ms (a concurrency rule cannot predict one).
func retryAfter(d *limiter.Decision) time.Duration {
	if d.Limiting.StoreError {
		return 0
	}
	return max(d.RetryAfter, time.Millisecond).Round(time.Millisecond)
}

func unitName(r *limiter.Rule) string {
	if r == nil {
		return ""
	}
	if r.Algorithm == algorithms.Concurrency {
		return "concurrent calls"
	}
	if r.Unit == limiter.Requests {
		return "calls"
	}
	return r.Unit.String()
}

// pushback returns the grpc-retry-pushback-ms trailer of a denial.
func (c *config) pushback(d *limiter.Decision) metadata.MD {
	lim := &d.Limiting
	var ms int64
	switch {
	case lim.StoreError:
		ms = c.unavailable.Milliseconds()
	case lim.Err != nil, lim.Reason == algorithms.ReasonExceedsCapacity:
		ms = -1 // waiting cannot help
	default:
		ms = int64((retryAfter(d) + time.Millisecond - 1) / time.Millisecond)
	}
	return metadata.MD{PushbackKey: []string{strconv.FormatInt(ms, 10)}}
}

// settle finishes a call's reservation: nothing was estimated, so Settle
// charges no tokens and releases concurrency slots.
func settle(ctx context.Context, res *limiter.Reservation, req *limiter.Request) {
	if res != nil {
		res.Settle(context.WithoutCancel(ctx), req.Estimate)
	}
}

// UnaryServerInterceptor returns a server interceptor that checks every
// unary call before its handler runs. A denied call never reaches the
// handler; it ends trailers-only with a status carrying RetryInfo and
// QuotaFailure details and the grpc-retry-pushback-ms trailer.
func UnaryServerInterceptor(l *limiter.Limiter, opts ...Option) grpc.UnaryServerInterceptor {
	c := newConfig(opts)
	return func(ctx context.Context, in any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		req := c.request(ctx, info.FullMethod, server)
		defer release(req)
		d := l.Check(ctx, req)
		if !d.Allowed {
			grpc.SetTrailer(ctx, c.pushback(&d))
			return nil, c.deny(ctx, req, &d)
		}
		defer settle(ctx, d.Reservation, req)
		return handler(ctx, in)
	}
}

// StreamServerInterceptor returns a server interceptor that checks every
// stream once, when it starts, as UnaryServerInterceptor does a call.
func StreamServerInterceptor(l *limiter.Limiter, opts ...Option) grpc.StreamServerInterceptor {
	c := newConfig(opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		req := c.request(ctx, info.FullMethod, server)
		defer release(req)
		d := l.Check(ctx, req)
		if !d.Allowed {
			ss.SetTrailer(c.pushback(&d))
			return c.deny(ctx, req, &d)
		}
		defer settle(ctx, d.Reservation, req)
		return handler(srv, ss)
	}
}

// UnaryClientInterceptor returns a client interceptor that checks every
// call before it is sent; a denied call fails locally with the same status
// a server would send, and nothing is sent. With WithWait it waits for
// capacity instead, within the call's deadline.
func UnaryClientInterceptor(l *limiter.Limiter, opts ...Option) grpc.UnaryClientInterceptor {
	c := newConfig(opts)
	return func(ctx context.Context, method string, in, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		req := c.request(ctx, method, client)
		defer release(req)
		d := c.check(ctx, l, req, c.wait)
		if !d.Allowed {
			return c.deny(ctx, req, &d)
		}
		defer settle(ctx, d.Reservation, req)
		return invoker(ctx, method, in, reply, cc, callOpts...)
	}
}

// StreamClientInterceptor returns a client interceptor that checks every
// stream before it is opened, as UnaryClientInterceptor does a call. A
// reservation (concurrency rules) is settled when the stream is created;
// limit the streams in flight on the server instead.
func StreamClientInterceptor(l *limiter.Limiter, opts ...Option) grpc.StreamClientInterceptor {
	c := newConfig(opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		req := c.request(ctx, method, client)
		defer release(req)
		d := c.check(ctx, l, req, c.wait)
		if !d.Allowed {
			return nil, c.deny(ctx, req, &d)
		}
		defer settle(ctx, d.Reservation, req)
		return streamer(ctx, desc, cc, method, callOpts...)
	}
}

// RateLimiter adapts a limiter.Limiter to the Limiter interface of
// github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit,
// for hosts that already use its interceptors. Those interceptors do not
// pass the method name, so rules keyed by method do not match, and they
// answer every error with RESOURCE_EXHAUSTED and no retry details; prefer
// this package's interceptors where you can. It is safe for concurrent
// use.
type RateLimiter struct {
	l *limiter.Limiter
	c config
}

// NewRateLimiter returns the adapter of l.
func NewRateLimiter(l *limiter.Limiter, opts ...Option) *RateLimiter {
	return &RateLimiter{l: l, c: newConfig(opts)}
}

// Limit checks a call whose context is ctx (incoming metadata and peer, as
// in a server interceptor; else outgoing metadata) and returns nil when it
// is admitted, else the denial's status error. Any reservation is settled
// at once.
func (r *RateLimiter) Limit(ctx context.Context) error {
	s := client
	if _, ok := metadata.FromIncomingContext(ctx); ok {
		s = server
	}
	method, _ := grpc.Method(ctx)
	req := r.c.request(ctx, method, s)
	defer release(req)
	d := r.l.Check(ctx, req)
	if !d.Allowed {
		return r.c.deny(ctx, req, &d)
	}
	settle(ctx, d.Reservation, req)
	return nil
}
