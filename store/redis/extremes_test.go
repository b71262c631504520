package redis_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
)

// TestExtremes walks a grid of extreme parameters through a fixed sequence
// of charges, forces, refunds, peeks and clock steps, where the script's
// limb arithmetic does the work (products up to 2^106, GCRA arrival times
// past 2^62 µs, retry times saturated at 2^63-1), and requires the
// results and the stored states of algorithms.Apply.
func TestExtremes(t *testing.T) {
	t.Parallel()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			s := redis.New(be.client(t), redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("x:"))
			type step struct {
				dt   int64 // µs, or -k for Period/k
				cost int64
				mode algorithms.Mode
			}
			steps := []step{
				{0, max53, 0}, {0, 1, 0}, {0, 0, 0}, {1, 1, 0},
				{0, max53, algorithms.Force}, {0, math.MaxInt64, algorithms.Force}, {0, 0, 0},
				{-2, 1, 0}, {0, -1, 0}, {0, -max53 / 2, 0}, {0, 1, 0},
				{-1, 0, 0}, {1 << 40, 1, 0}, {0, max53 - 1, 0}, {0, math.MinInt64, 0}, {0, 2, 0},
			}
			now0 := int64(1_767_225_600_000_000)
			n := 0
			for kind := algorithms.FixedWindow; kind <= algorithms.Concurrency; kind++ {
				limits, periods := []int64{1, 3, 1e6, max53 - 1, max53}, []int64{1, 7, 86_400_000_000, algorithms.MaxPeriod}
				if be.name == "miniredis" { // slow; the real server runs the whole grid
					limits, periods = []int64{1, max53}, []int64{7, algorithms.MaxPeriod}
				}
				for _, limit := range limits {
					for _, period := range periods {
						for _, burst := range []int64{0, 1, max53} {
							p := algorithms.Params{Kind: kind, Limit: limit, Period: period, Burst: burst, Offset: -period / 3}
							key := fmt.Sprintf("%d", n)
							n++
							var st algorithms.State
							now := now0
							got := make([]algorithms.Result, 1)
							for i, sp := range steps {
								if sp.dt < 0 {
									now += period / -sp.dt
								} else {
									now += sp.dt
								}
								ns, want := algorithms.Apply(p, st, now, sp.cost, sp.mode)
								if want.Allowed && sp.cost != 0 {
									st = ns
								}
								op := store.Op{Key: key, Params: p, Cost: sp.cost, Mode: sp.mode}
								if err := s.Apply(ctx, now, []store.Op{op}, got); err != nil {
									t.Fatalf("%+v step %d: %v", p, i, err)
								}
								if got[0] != want {
									t.Fatalf("%+v step %d (now=%d cost=%d mode=%d): got %+v, want %+v", p, i, now, sp.cost, sp.mode, got[0], want)
								}
								stored, _, err := s.Inspect(ctx, key)
								if err != nil {
									t.Fatal(err)
								}
								if stored != st {
									t.Fatalf("%+v step %d: stored state %v, want %v", p, i, stored, st)
								}
							}
						}
					}
				}
			}
		})
	}
}
