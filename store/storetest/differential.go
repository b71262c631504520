package storetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// randomSeed returns a seed that differs from run to run.
func randomSeed() uint64 { return uint64(time.Now().UnixNano()) }

// diffKey is one key of a differential run, with the parameters it keeps
// for the whole run (two ops with different Params never share a key).
type diffKey struct {
	name string
	p    algorithms.Params
}

// testDifferential replays a random sequence of batches, resets and clock
// steps against the store and the model; harness.apply fails on the first
// result that differs.
func testDifferential(h *harness, seed uint64, nOps int) {
	t := h.t
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("differential run with seed %d failed; replay it with storetest.WithSeeds(%d)", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	keys := make([]diffKey, 12)
	for i := range keys {
		keys[i] = diffKey{name: h.key(fmt.Sprintf("k%d", i)), p: randomParams(rng)}
	}
	// The clock stays below 2^53 µs (about the year 2255), the range the
	// algorithms promise to be exact in with doubles.
	horizon := h.now + 4e15
	ops := make([]store.Op, 0, 10)
	var stats struct {
		batches, admitted int
		reasons           [3]int
	}
	done := 0
	for done < nOps {
		if step := randomStep(rng, keys); h.now+step < horizon {
			h.advance(step)
		}
		if rng.IntN(50) == 0 {
			h.reset(keys[rng.IntN(len(keys))].name, keys[rng.IntN(len(keys))].name)
		}
		ops = ops[:0]
		// Batches draw from a few keys, so duplicates within a batch occur.
		pool := 2 + rng.IntN(len(keys)-1)
		for range batchSize(rng) {
			k := keys[rng.IntN(pool)]
			op := store.Op{Key: k.name, Params: k.p, Cost: randomCost(rng, k.p)}
			if rng.IntN(10) == 0 {
				op.Mode = algorithms.Force
			}
			op.Shadow = rng.IntN(6) == 0
			ops = append(ops, op)
		}
		res := h.apply(ops...)
		done += len(ops)
		stats.batches++
		if store.Admitted(ops, res) {
			stats.admitted++
		}
		for _, r := range res {
			stats.reasons[r.Reason]++
		}
	}
	t.Logf("seed %d: %d ops in %d batches, %d admitted; results by reason: %v", seed, done, stats.batches, stats.admitted, stats.reasons)
}

func batchSize(rng *rand.Rand) int {
	switch n := rng.IntN(10); {
	case n < 5:
		return 1
	case n < 9:
		return 2 + rng.IntN(3)
	default:
		return 5 + rng.IntN(6)
	}
}

// randomParams mixes everyday parameters with extreme ones: limits up to
// MaxLimit, periods from 1 µs to MaxPeriod, bursts below and above the
// limit, any offset.
func randomParams(rng *rand.Rand) algorithms.Params {
	p := algorithms.Params{Kind: algorithms.Kind(1 + rng.IntN(5))}
	p.Limit = randomAmount(rng)
	if rng.IntN(30) == 0 {
		p.Limit = 0
	}
	switch rng.IntN(8) {
	case 0:
		p.Period = 1 + rng.Int64N(10)
	case 1:
		p.Period = 1 + rng.Int64N(1_000)
	case 2:
		p.Period = algorithms.MaxPeriod
	case 3:
		p.Period = 1 + rng.Int64N(algorithms.MaxPeriod)
	case 4:
		p.Period = hour
	default:
		p.Period = (1 + rng.Int64N(120)) * second
	}
	if rng.IntN(2) == 0 {
		p.Burst = randomAmount(rng)
	}
	switch rng.IntN(4) {
	case 0:
		p.Offset = rng.Int64N(p.Period)
	case 1:
		p.Offset = rng.Int64()
	case 2:
		p.Offset = -rng.Int64N(2 * p.Period)
	}
	return p
}

// randomAmount returns a limit or burst in [1, MaxLimit].
func randomAmount(rng *rand.Rand) int64 {
	switch rng.IntN(8) {
	case 0:
		return 1
	case 1, 2:
		return 1 + rng.Int64N(10)
	case 3:
		return 1 + rng.Int64N(1_000)
	case 4:
		return 1 + rng.Int64N(1_000_000_000)
	case 5:
		return algorithms.MaxLimit - rng.Int64N(3)
	case 6:
		return 1 + rng.Int64N(algorithms.MaxLimit)
	default:
		return 1 + rng.Int64N(100)
	}
}

// randomCost returns a cost for p: peeks, small charges and refunds,
// the capacity and one over it, and extremes past MaxLimit.
func randomCost(rng *rand.Rand, p algorithms.Params) int64 {
	c := max(p.Capacity(), 1)
	switch n := rng.IntN(40); {
	case n < 6:
		return 0
	case n < 16:
		return 1
	case n < 21:
		return 1 + rng.Int64N(min(c, 5))
	case n < 25:
		return -1 - rng.Int64N(5)
	case n < 28:
		return 1 + rng.Int64N(c)
	case n < 30:
		return -1 - rng.Int64N(c)
	case n < 32:
		return c
	case n < 34:
		return c + 1
	case n < 36:
		return algorithms.MaxLimit
	case n < 37:
		return -algorithms.MaxLimit
	case n < 38:
		return math.MaxInt64
	case n < 39:
		return math.MinInt64
	default:
		return rng.Int64N(2*c+1) - c
	}
}

// randomStep returns how far the clock moves before a batch, in µs: often
// not at all, often a little, sometimes about a key's period, rarely a
// year or more.
func randomStep(rng *rand.Rand, keys []diffKey) int64 {
	switch n := rng.IntN(40); {
	case n < 12:
		return 0
	case n < 18:
		return 1 + rng.Int64N(10)
	case n < 26:
		p := keys[rng.IntN(len(keys))].p.Period
		return max(0, rng.Int64N(2*p)+rng.Int64N(3)-1)
	case n < 32:
		return rng.Int64N(second)
	case n < 37:
		return rng.Int64N(hour)
	case n < 39:
		return algorithms.MaxPeriod
	default:
		return rng.Int64N(2 * algorithms.MaxPeriod)
	}
}
