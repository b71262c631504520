package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

// thousandRules returns a document of 1,000 rules, one per model, whose
// predicates are plain equalities.
func thousandRules(when string) string {
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {name: r%d, limit: 1000000000/s, when: '%s'}\n", i, fmt.Sprintf(when, i))
	}
	return b.String()
}

// BenchmarkCheck1000Rules1Match is the budget: a limiter with
// 1,000 policy rules of which one matches, ≤ 2µs and 0 allocs per check.
func BenchmarkCheck1000Rules1Match(b *testing.B) {
	p := mustLoad(b, thousandRules(`request.model == "m%d"`))
	l, _ := newLimiter(b, p)
	r := &limiter.Request{Facts: dimensions.Facts{Model: "m500", User: "u"}}
	ctx := context.Background()
	if d := l.Check(ctx, r); !d.Allowed || d.Len() != 1 {
		b.Fatalf("decision %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !l.Check(ctx, r).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkCheck1000RulesIndexedCEL: the same with `model == x && rest`
// predicates, indexed on the model; the one candidate runs CEL.
func BenchmarkCheck1000RulesIndexedCEL(b *testing.B) {
	p := mustLoad(b, thousandRules(`request.model == "m%d" && request.user != "blocked"`))
	l, _ := newLimiter(b, p)
	r := &limiter.Request{Facts: dimensions.Facts{Model: "m500", User: "u"}}
	ctx := context.Background()
	if d := l.Check(ctx, r); !d.Allowed || d.Len() != 1 {
		b.Fatalf("decision %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Check(ctx, r)
	}
}

// TestCheck1000RulesAllocs keeps the 0-allocation budget in the normal
// test run.
func TestCheck1000RulesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	p := mustLoad(t, thousandRules(`request.model == "m%d"`))
	l, _ := newLimiter(t, p)
	r := &limiter.Request{Facts: dimensions.Facts{Model: "m500"}}
	ctx := context.Background()
	l.Check(ctx, r)
	if n := testing.AllocsPerRun(200, func() { l.Check(ctx, r) }); n != 0 {
		t.Errorf("%v allocs per check; want 0", n)
	}
}

func BenchmarkLoad(b *testing.B) {
	doc := []byte(thousandRules(`request.model == "m%d" && request.user != "x"`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(doc); err != nil {
			b.Fatal(err)
		}
	}
}
