package grpclimit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/grpclimit"
	"github.com/tollgate-go/tollgate/store/memory"
)

// BenchmarkUnaryServer compares a bare unary handler with the same handler
// behind the server interceptor (memory store, one per-key rule that
// always admits), calling the interceptor directly: the difference is the
// interceptor's cost per call, without the transport.
func BenchmarkUnaryServer(b *testing.B) {
	rule := limiter.Rule{Name: "per-key", Algorithm: algorithms.FixedWindow, Limit: 1 << 40, Period: time.Hour,
		By: []dimensions.Dimension{dimensions.APIKey}}
	l, err := limiter.New(memory.New(), []limiter.Rule{rule})
	if err != nil {
		b.Fatal(err)
	}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	ctxs := make([]context.Context, 1024)
	for i := range ctxs {
		ctxs[i] = metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer sk-"+strconv.Itoa(i)))
	}
	bare := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(ctx, req)
	}
	for _, c := range []struct {
		name string
		ic   grpc.UnaryServerInterceptor
	}{
		{"bare", bare},
		{"limited", grpclimit.UnaryServerInterceptor(l)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.ic(ctxs[i&1023], i, info, handler); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
