package algorithms_test

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

var allKinds = []algorithms.Kind{
	algorithms.FixedWindow, algorithms.SlidingWindow, algorithms.TokenBucket,
	algorithms.GCRA, algorithms.Concurrency,
}

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: from the clock); replay a failure with go test ./algorithms -run X -args -seed=N")

// newRand returns a generator and logs its seed, so that a failure can be
// replayed with -seed.
func newRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// horizon bounds `now` in randomized tests: far past any real clock, and
// far enough below 2^63 that now+Period and similar sums cannot wrap.
const horizon = 1 << 61

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func randParams(r *rand.Rand, kind algorithms.Kind) algorithms.Params {
	p := algorithms.Params{Kind: kind}
	p.Limit = pick(r, 1, 2, 3, 5, 10, 60, 100, 1000, 1_000_000, 1<<31, algorithms.MaxLimit,
		r.Int64N(20)+1, r.Int64N(1e9)+1, r.Int64N(algorithms.MaxLimit)+1)
	if r.IntN(40) == 0 {
		p.Limit = 0
	}
	p.Period = pick[int64](r, 1, 2, 7, 1000, 1_000_000, 60_000_000, 3_600_000_000, 86_400_000_000,
		algorithms.MaxPeriod, r.Int64N(100)+1, r.Int64N(1e7)+1, r.Int64N(algorithms.MaxPeriod)+1)
	if r.IntN(2) == 0 {
		p.Burst = pick(r, 1, max(1, p.Limit/2), p.Limit, min(algorithms.MaxLimit, 2*p.Limit+1),
			r.Int64N(50)+1, r.Int64N(algorithms.MaxLimit)+1)
	}
	if r.IntN(2) == 0 {
		p.Offset = pick(r, r.Int64N(p.Period), -r.Int64N(p.Period), r.Int64()-r.Int64(),
			-int64(5*time.Hour+30*time.Minute)/1000)
	}
	return p
}

func randStart(r *rand.Rand) int64 {
	return pick(r, 0, 1, r.Int64N(1e6), 1_700_000_000_000_000+r.Int64N(1e14), r.Int64N(horizon/2))
}

func randStep(r *rand.Rand, p algorithms.Params) int64 {
	P := p.Period
	return pick(r, 0, 0, 1, 2, r.Int64N(max(1, P/10)), r.Int64N(P), max(0, P-1), P, P+1,
		r.Int64N(3*P), 2*P, r.Int64N(1<<40))
}

func randCost(r *rand.Rand, p algorithms.Params) (int64, algorithms.Mode) {
	c := max(1, p.Capacity())
	cost := pick(r, 0, 1, 1, 1, -1, r.Int64N(5)+1, c, c+1, r.Int64N(c)+1, -r.Int64N(c)-1,
		max(1, c/3), algorithms.MaxLimit, algorithms.MaxLimit+1, math.MaxInt64, math.MinInt64,
		-algorithms.MaxLimit)
	mode := algorithms.Normal
	if r.IntN(10) == 0 {
		mode = algorithms.Force
	}
	return cost, mode
}

type op struct {
	now, cost int64
	mode      algorithms.Mode
}

func (o op) String() string {
	m := ""
	if o.mode == algorithms.Force {
		m = " force"
	}
	return fmt.Sprintf("now=%d cost=%d%s", o.now, o.cost, m)
}

func fmtHistory(h []op, got, want []algorithms.Result) string {
	var b strings.Builder
	for i := max(0, len(h)-12); i < len(h); i++ {
		fmt.Fprintf(&b, "\n  step %d: %v -> got %+v", i, h[i], got[i])
		if i < len(want) {
			fmt.Fprintf(&b, " want %+v", want[i])
		}
	}
	return b.String()
}

// TestApplyMatchesModel replays random operation sequences against Apply
// and against the exact reference model, and requires every field of
// every result to match. Time never goes back here (see
// TestClockGoingBack).
func TestApplyMatchesModel(t *testing.T) {
	runs := 200
	if testing.Short() {
		runs = 50
	}
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			r := newRand(t)
			for range runs {
				p := randParams(r, kind)
				m := newModel(p)
				var s algorithms.State
				now := randStart(r)
				var hist []op
				var gots, wants []algorithms.Result
				for range 60 {
					now = min(now+randStep(r, p), horizon)
					cost, mode := randCost(r, p)
					before := s
					var got algorithms.Result
					s, got = algorithms.Apply(p, s, now, cost, mode)
					want := m.apply(now, cost, mode)
					hist = append(hist, op{now, cost, mode})
					gots, wants = append(gots, got), append(wants, want)
					if got != want {
						t.Fatalf("%+v: Apply and the model disagree at the last step:%s", p, fmtHistory(hist, gots, wants))
					}
					checkStep(t, p, before, op{now, cost, mode}, s, got, r)
					if t.Failed() {
						t.Fatalf("%+v: history:%s", p, fmtHistory(hist, gots, wants))
					}
				}
			}
		})
	}
}

// TestGCRAAdmitsWhatTokenBucketAdmits runs both algorithms on the same
// parameters and operations (no model involved) and requires equal results.
func TestGCRAAdmitsWhatTokenBucketAdmits(t *testing.T) {
	r := newRand(t)
	for range 400 {
		pb := randParams(r, algorithms.TokenBucket)
		pg := pb
		pg.Kind = algorithms.GCRA
		var sb, sg algorithms.State
		now := randStart(r)
		var hist []op
		var gots, wants []algorithms.Result
		for range 80 {
			now = min(now+randStep(r, pb), horizon)
			cost, mode := randCost(r, pb)
			var rb, rg algorithms.Result
			sb, rb = algorithms.Apply(pb, sb, now, cost, mode)
			sg, rg = algorithms.Apply(pg, sg, now, cost, mode)
			hist = append(hist, op{now, cost, mode})
			gots, wants = append(gots, rg), append(wants, rb)
			if rg != rb {
				t.Fatalf("%+v: GCRA (got) and TokenBucket (want) disagree:%s", pg, fmtHistory(hist, gots, wants))
			}
		}
	}
}
