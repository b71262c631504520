package benchmarks

// Issue 5's budget: a limiter with 1,000 policy rules, of which one matches,
// decides in at most 2 µs without allocating. The baseline is the same
// decision with a single rule and no predicate: what matching adds.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/policy"
)

// thousandRules is a policy of 1,000 rules, one per model, each with a plain
// equality predicate (which policy indexes).
func thousandRules() string {
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {name: r%d, limit: 1000000000/s, when: 'request.model == \"m%d\"'}\n", i, i)
	}
	return b.String()
}

func BenchmarkPolicy1000Rules(b *testing.B) {
	for _, c := range []struct{ name, doc string }{
		{"tollgate", thousandRules()},
		{"1-rule", "version: 1\nrules:\n  - {name: r, limit: 1000000000/s}\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := policy.Load([]byte(c.doc))
			if err != nil {
				b.Fatal(err)
			}
			l := newLimiter(b, p.Rules())
			req := &limiter.Request{Facts: dimensions.Facts{Model: "m500", User: "u"}}
			if d := l.Check(context.Background(), req); !d.Allowed || d.Len() != 1 {
				b.Fatalf("%d rules applied, want 1: %+v", d.Len(), d)
			}
			b.ReportAllocs()
			for b.Loop() {
				mustCheck(b, l, req)
			}
		})
	}
}
