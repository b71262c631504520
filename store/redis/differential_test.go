package redis_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
)

// model applies batches with algorithms.Apply directly, as package store
// documents them. Like the store, it writes only the keys that an allowed
// op with a non-zero cost changed: a peek's state (a bucket refilled, a
// window rolled over) is equivalent to the stored one, and not written.
type model map[string]algorithms.State

func (m model) apply(now int64, ops []store.Op, results []algorithms.Result) {
	work := map[string]algorithms.State{}
	dirty := map[string]bool{}
	for i, op := range ops {
		s, ok := work[op.Key]
		if !ok {
			s = m[op.Key]
		}
		s, results[i] = algorithms.Apply(op.Params, s, now, op.Cost, op.Mode)
		work[op.Key] = s
		if results[i].Allowed && op.Cost != 0 {
			dirty[op.Key] = true
		}
	}
	if !store.Admitted(ops, results) {
		return
	}
	for k, s := range work {
		if !dirty[k] {
			continue
		}
		if s == (algorithms.State{}) {
			delete(m, k)
		} else {
			m[k] = s
		}
	}
}

const max53 = algorithms.MaxLimit

var (
	limits  = []int64{0, 1, 2, 3, 7, 10, 100, 1000, 1e6, 1e9, 1 << 40, max53 - 1, max53}
	periods = []int64{1, 2, 7, 1000, 1e6, 6e7, 3.6e9, 8.64e10, 7 * 8.64e10, algorithms.MaxPeriod - 1, algorithms.MaxPeriod}
	bursts  = []int64{0, 0, 0, 1, 5, 1e6, 1 << 40, max53}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomParams(r *rand.Rand) algorithms.Params {
	p := algorithms.Params{
		Kind:   algorithms.Kind(1 + r.IntN(5)),
		Limit:  pick(r, limits),
		Period: pick(r, periods),
		Burst:  pick(r, bursts),
	}
	if r.IntN(4) == 0 {
		p.Limit = 1 + r.Int64N(max53)
	}
	if r.IntN(4) == 0 {
		p.Period = 1 + r.Int64N(algorithms.MaxPeriod)
	}
	switch r.IntN(4) {
	case 0:
		p.Offset = r.Int64()
	case 1:
		p.Offset = -r.Int64N(p.Period * 3)
	case 2:
		p.Offset = r.Int64N(p.Period)
	}
	return p
}

func randomCost(r *rand.Rand, p algorithms.Params) int64 {
	c := p.Capacity()
	switch r.IntN(14) {
	case 0:
		return 0
	case 1:
		return -1
	case 2:
		return c
	case 3:
		return c + 1
	case 4:
		return -c
	case 5:
		return max53
	case 6:
		return -max53
	case 7:
		return math.MaxInt64
	case 8:
		return math.MinInt64
	case 9:
		return r.Int64() - r.Int64()
	case 10:
		if c > 0 {
			return 1 + r.Int64N(c)
		}
		return 1
	case 11:
		if c > 2 {
			return c/2 + r.Int64N(2)
		}
		return 2
	}
	return 1 + r.Int64N(3)
}

func randomStep(r *rand.Rand, p algorithms.Params) int64 {
	switch r.IntN(8) {
	case 0, 1:
		return 0
	case 2:
		return 1
	case 3:
		return r.Int64N(1000)
	case 4:
		return p.Period / 3
	case 5:
		return p.Period
	case 6:
		return r.Int64N(p.Period + 1)
	}
	return r.Int64N(1e6)
}

// runDifferential replays random batches on s and on the model and
// requires identical results, then identical stored states.
func runDifferential(t *testing.T, s *redis.Store, seed uint64, steps int) {
	t.Helper()
	runDifferentialWith(t, s, seed, steps, false)
}

func runDifferentialBack(t *testing.T, s *redis.Store, seed uint64, steps int) {
	t.Helper()
	runDifferentialWith(t, s, seed, steps, true)
}

func runDifferentialWith(t *testing.T, s *redis.Store, seed uint64, steps int, back bool) {
	t.Helper()
	runDifferentialParams(t, s, seed, steps, back, randomParams)
}

// runDifferentialParams is runDifferentialWith with the keys' parameters
// drawn by params.
func runDifferentialParams(t *testing.T, s *redis.Store, seed uint64, steps int, back bool, params func(*rand.Rand) algorithms.Params) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := model{}
	type keyInfo struct {
		name string
		p    algorithms.Params
	}
	var keys []keyInfo
	for i := range 12 {
		keys = append(keys, keyInfo{fmt.Sprintf("k%d", i), params(r)})
	}
	now := int64(1_767_225_600_000_000)
	got := make([]algorithms.Result, 6)
	want := make([]algorithms.Result, 6)
	for step := range steps {
		if r.IntN(40) == 0 { // new parameters for a key: a fresh key name
			i := r.IntN(len(keys))
			keys[i] = keyInfo{fmt.Sprintf("k%d-%d", i, step), params(r)}
		}
		n := 1 + r.IntN(4)
		ops := make([]store.Op, n)
		for j := range ops {
			k := keys[r.IntN(len(keys))]
			ops[j] = store.Op{Key: k.name, Params: k.p, Cost: randomCost(r, k.p), Shadow: r.IntN(6) == 0}
			if r.IntN(5) == 0 {
				ops[j].Mode = algorithms.Force
			}
		}
		if d := randomStep(r, ops[0].Params); now+d < 1<<52 {
			now += d
		}
		if back && r.IntN(5) == 0 {
			now -= randomStep(r, ops[0].Params)
		}
		m.apply(now, ops, want)
		if err := s.Apply(ctx, now, ops, got); err != nil {
			t.Fatalf("seed %d step %d: Apply(now=%d, %s): %v", seed, step, now, fmtOps(ops), err)
		}
		for j := range ops {
			if got[j] != want[j] {
				t.Fatalf("seed %d step %d: Apply(now=%d, %s): op %d: got %+v, want %+v", seed, step, now, fmtOps(ops), j, got[j], want[j])
			}
		}
	}
	for _, k := range keys {
		st, ttl, err := s.Inspect(ctx, k.name)
		if err != nil {
			t.Fatalf("Inspect(%s): %v", k.name, err)
		}
		if st != m[k.name] {
			t.Fatalf("seed %d: state of %s (%+v): got %v, want %v", seed, k.name, k.p, st, m[k.name])
		}
		if st != (algorithms.State{}) && ttl <= 0 {
			t.Fatalf("seed %d: %s has state %v and no TTL", seed, k.name, st)
		}
	}
}

func fmtOps(ops []store.Op) string {
	var b strings.Builder
	for i, op := range ops {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{%s %+v cost=%d mode=%d shadow=%v}", op.Key, op.Params, op.Cost, op.Mode, op.Shadow)
	}
	return b.String()
}

func TestDifferential(t *testing.T) {
	t.Parallel()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			// miniredis (gopher-lua) is slow, above all with -race: the real
			// server runs the long sequences, miniredis checks its Lua agrees.
			steps, seeds := 3000, []uint64{1, 2, 3, rand.Uint64()}
			if be.name == "miniredis" {
				steps, seeds = 400, []uint64{1, rand.Uint64()}
			}
			if testing.Short() {
				steps = min(steps, 300)
			}
			for _, seed := range seeds {
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					t.Parallel()
					s := redis.New(be.client(t), redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix(fmt.Sprintf("diff:%d:", seed)))
					runDifferential(t, s, seed, steps)
				})
			}
		})
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func keyName(i int) string { return fmt.Sprintf("key%d", i) }

// TestClockBack replays random batches whose caller clock sometimes steps
// back (instances with skewed clocks), against algorithms.Apply.
func TestClockBack(t *testing.T) {
	t.Parallel()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := redis.New(be.client(t), redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("back:"))
			steps := 1500
			if be.name == "miniredis" {
				steps = 300
			}
			runDifferentialBack(t, s, 11, steps)
		})
	}
}

// nearBoundParams draws parameters where the script's fast paths (plain
// doubles) meet its exact limb code: Limit*Period, Burst*Period and the
// products of elapsed time and Limit near 2^53, limits near 2^53, periods
// up to a year.
func nearBoundParams(r *rand.Rand) algorithms.Params {
	p := algorithms.Params{
		Kind:   algorithms.Kind(1 + r.IntN(5)),
		Period: pick(r, []int64{1, 7, 1e6, 6e7, 3.6e9, 8.64e10, 365 * 8.64e10, algorithms.MaxPeriod, 1 + r.Int64N(algorithms.MaxPeriod)}),
	}
	near := func() int64 { // about 2^53/Period
		v := max53/p.Period + r.Int64N(5) - 2
		if r.IntN(3) == 0 {
			v = v/2 + r.Int64N(3) - 1
		}
		return min(max(v, 1), max53)
	}
	switch r.IntN(4) {
	case 0:
		p.Limit = pick(r, []int64{max53, max53 - 1, max53 / 2, 1e12})
	case 1:
		p.Limit = 1 + r.Int64N(max53)
	default:
		p.Limit = near()
	}
	switch r.IntN(4) {
	case 0:
		p.Burst = near()
	case 1:
		p.Burst = pick(r, []int64{1, max53, max53 - 1})
	}
	if r.IntN(3) == 0 {
		p.Offset = r.Int64N(p.Period)
	}
	return p
}

// TestDifferentialNearBounds replays random batches whose values straddle
// 2^53, so that ops take both the script's fast paths and its exact code,
// against algorithms.Apply.
func TestDifferentialNearBounds(t *testing.T) {
	t.Parallel()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			steps, seeds := 3000, []uint64{21, 22, rand.Uint64()}
			if be.name == "miniredis" {
				steps, seeds = 400, []uint64{21, rand.Uint64()}
			}
			if testing.Short() {
				steps = min(steps, 300)
			}
			for _, seed := range seeds {
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					t.Parallel()
					s := redis.New(be.client(t), redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix(fmt.Sprintf("near:%d:", seed)))
					runDifferentialParams(t, s, seed, steps, seed%2 == 0, nearBoundParams)
				})
			}
		})
	}
}

// TestFastPathBounds walks sequences that put one product of each fast path
// just past 2^53 (refills of a forced-full bucket, GCRA arrival times,
// sliding-window weights), where a fast path that trusted doubles would
// round, against algorithms.Apply.
func TestFastPathBounds(t *testing.T) {
	t.Parallel()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := redis.New(be.client(t), redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("bounds:"))
			n := 0
			for kind := algorithms.FixedWindow; kind <= algorithms.Concurrency; kind++ {
				for _, period := range []int64{7, 1e6, 6e7, 365 * 86_400_000_000} {
					for _, dl := range []int64{-1, 0, 1, 2} {
						limit := max53/period + dl
						p := algorithms.Params{Kind: kind, Limit: limit, Period: period}
						key := fmt.Sprint("b", n)
						n++
						walkSteps(t, s, fmt.Sprintf("%+v", p), key, p, []boundStep{
							{0, max53, algorithms.Force}, {period, 1, 0}, {period + 1, 3, 0}, {period/2 + 1, limit, 0},
							{0, -limit / 2, 0}, {2*period + 3, max53 / 3, algorithms.Force}, {period - 1, 1, 0}, {1, 0, 0},
							{period * 3, limit - 1, 0}, {period/3 + 1, 2, 0}, {0, -max53, 0}, {period, 1, 0},
						})
					}
				}
			}
		})
	}
}

// TestFastPathTokenBucketPrecision drives token buckets to where the
// script's plain-double fast path would round: a refill product
// (elapsed × limit) and a drain product (level × period) that are odd and
// between 2^53 and 2^54, which a double cannot hold, chosen so that the
// rounding would show in the stored state or the reset. The script must
// take its exact path there, so results and state match package
// algorithms to the unit.
func TestFastPathTokenBucketPrecision(t *testing.T) {
	t.Parallel()
	const period = 7
	// Refill: 9 µs × (2^50+1) = 10133099161583625, which rounds to ...624;
	// the bucket holds 1,000 units more than the refill drains, so the
	// charge after it is admitted and stores frac = t mod 7: 3, not 2.
	refillLimit := int64(1<<50 + 1)
	refillLevel := 9*refillLimit/period + 1000
	// Drain: level × 7 ≡ 1 (mod 4), in [2^53, 2^54), rounds down by one, and
	// with a limit of 2 the reset ceil(level×7 / 2) would come out one
	// short.
	drainLevel := int64(3<<52)/period&^3 | 3
	// Retry: a denied charge of 1 waits for units = level-1 to drain; with
	// level ≡ 0 (mod 4), units × 7 ≡ 1 (mod 4) would round down the same
	// way. (level × 7, checked for the reset, is larger, so that check
	// alone already sends this op to the exact path.)
	retryLevel := int64(3<<52) / period &^ 3
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := redis.New(be.client(t), redis.WithCallerClock(), redis.WithMinTTL(time.Hour), redis.WithKeyPrefix("precision:"))
			for i, c := range []struct {
				name  string
				limit int64
				steps []boundStep
			}{
				{"refill over 2^53", refillLimit, []boundStep{{0, refillLevel, algorithms.Force}, {9, 1, 0}, {1, 0, 0}}},
				{"drain time over 2^53", 2, []boundStep{{0, drainLevel, algorithms.Force}, {0, 0, 0}, {3, 0, 0}}},
				{"retry over 2^53", 2, []boundStep{{0, retryLevel, algorithms.Force}, {0, 1, 0}, {5, 1, 0}}},
			} {
				p := algorithms.Params{Kind: algorithms.TokenBucket, Limit: c.limit, Period: period}
				walkSteps(t, s, c.name, fmt.Sprint("tb", i), p, c.steps)
			}
		})
	}
}

// boundStep is one op of walkSteps: dt µs later, cost in mode.
type boundStep struct {
	dt, cost int64
	mode     algorithms.Mode
}

// walkSteps applies steps to key with parameters p, from a fixed start,
// on s and on package algorithms (model), and fails at the first step
// whose result or stored state differs. name labels the failures.
func walkSteps(t *testing.T, s *redis.Store, name, key string, p algorithms.Params, steps []boundStep) {
	t.Helper()
	ctx := context.Background()
	m := model{}
	now := int64(1_767_225_600_000_000)
	got, want := make([]algorithms.Result, 1), make([]algorithms.Result, 1)
	for i, st := range steps {
		now += st.dt
		ops := []store.Op{{Key: key, Params: p, Cost: st.cost, Mode: st.mode}}
		m.apply(now, ops, want)
		if err := s.Apply(ctx, now, ops, got); err != nil {
			t.Fatal(err)
		}
		if got[0] != want[0] {
			t.Fatalf("%s, step %d (now=%d cost=%d mode=%d): got %+v, want %+v", name, i, now, st.cost, st.mode, got[0], want[0])
		}
		stored, _, err := s.Inspect(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if stored != m[key] {
			t.Fatalf("%s, step %d: stored %v, want %v", name, i, stored, m[key])
		}
	}
}
