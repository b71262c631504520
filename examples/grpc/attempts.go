package main

import (
	"context"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// attempts is a client stats handler that records the attempts of each
// call: grpc-go reports every attempt to it, retries included, which the
// application does not otherwise see.
type attempts struct{}

var _ stats.Handler = attempts{}

// trace is what attempts recorded for one call.
type trace struct {
	mu       sync.Mutex
	attempts int
	// pushbacks are the delays the server asked for (RetryInfo) on the
	// attempts it refused.
	pushbacks []time.Duration
}

type traceKey struct{}

// traced returns ctx with a trace that attempts fills in.
func traced(ctx context.Context) (context.Context, *trace) {
	t := new(trace)
	return context.WithValue(ctx, traceKey{}, t), t
}

func (attempts) HandleRPC(ctx context.Context, s stats.RPCStats) {
	t, ok := ctx.Value(traceKey{}).(*trace)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s := s.(type) {
	case *stats.Begin:
		t.attempts++
	case *stats.End:
		for _, d := range status.Convert(s.Error).Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				t.pushbacks = append(t.pushbacks, ri.RetryDelay.AsDuration())
			}
		}
	}
}

func (attempts) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (attempts) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (attempts) HandleConn(context.Context, stats.ConnStats)                       {}
