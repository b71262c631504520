package ledger_test

import (
	"context"
	"testing"

	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

// BenchmarkCheckSettle measures a check and its settlement with a token
// rule on the memory store, without a ledger and with the default one
// (four groups): the ledger's cost per request.
func BenchmarkCheckSettle(b *testing.B) {
	ctx := context.Background()
	for _, withLedger := range []bool{false, true} {
		name := "no-ledger"
		if withLedger {
			name = "ledger"
		}
		b.Run(name, func(b *testing.B) {
			s := memory.New()
			var opts []limiter.Option
			if withLedger {
				lg, err := ledger.New(s)
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, limiter.WithRecorder(lg))
			}
			rule := tokenRule()
			rule.Limit = 1 << 50
			lim, err := limiter.New(s, []limiter.Rule{rule}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			req := &limiter.Request{Facts: alice, Estimate: limiter.Usage{InputTokens: 10, OutputTokens: 10}}
			b.ReportAllocs()
			for b.Loop() {
				d := lim.Check(ctx, req)
				d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 10, OutputTokens: 5, Cost: 3})
			}
		})
	}
}
