package grpclimit_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/grpclimit"
	"github.com/tollgate-go/tollgate/store/memory"
)

func ExampleUnaryServerInterceptor() {
	clock := func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
	l, _ := limiter.New(memory.New(), []limiter.Rule{{
		Name: "per-method", Algorithm: algorithms.FixedWindow, Limit: 1, Period: time.Second,
	}}, limiter.WithClock(clock))
	intercept := grpclimit.UnaryServerInterceptor(l)
	// A server installs it with grpc.NewServer(grpc.UnaryInterceptor(intercept)).
	handler := func(ctx context.Context, req any) (any, error) { return "hello", nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/greeter.Greeter/SayHello"}
	for range 2 {
		resp, err := intercept(context.Background(), nil, info, handler)
		fmt.Println(resp, status.Code(err))
	}
	// Output:
	// hello OK
	// <nil> ResourceExhausted
}
