package algorithms

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestValidAgreesWithValidate holds the cheap check the stores use on the
// hot path to the one that explains itself.
func TestValidAgreesWithValidate(t *testing.T) {
	edges := []int64{math.MinInt64, -1, 0, 1, 2, MaxLimit - 1, MaxLimit, MaxLimit + 1, MaxPeriod - 1, MaxPeriod, MaxPeriod + 1, math.MaxInt64}
	check := func(p Params) {
		t.Helper()
		if got, want := p.Valid(), p.Validate() == nil; got != want {
			t.Fatalf("%+v: Valid() = %v, Validate() == nil is %v", p, got, want)
		}
	}
	for k := Kind(0); k <= Concurrency+1; k++ {
		for _, l := range edges {
			for _, per := range edges {
				for _, b := range edges {
					check(Params{Kind: k, Limit: l, Period: per, Burst: b})
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		check(Params{Kind: Kind(r.IntN(8)), Limit: r.Int64() >> r.IntN(64), Period: r.Int64() >> r.IntN(64), Burst: r.Int64() >> r.IntN(64), Offset: r.Int64()})
	}
}
