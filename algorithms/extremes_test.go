package algorithms_test

import (
	"math"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

// TestExtremesMatchModel runs a fixed script of extreme operations on a
// grid of extreme parameters and compares every result with the exact
// model: 2^53 limits and bursts, one-year periods, 1µs periods, offsets
// at the int64 ends, costs beyond ±2^53, and jumps of up to 2^60µs.
func TestExtremesMatchModel(t *testing.T) {
	const now0 = 1_700_000_000_000_000 // 2023-11-14, µs
	limits := []int64{1, 2, algorithms.MaxLimit - 1, algorithms.MaxLimit}
	periods := []int64{1, 1_000_000, algorithms.MaxPeriod - 1, algorithms.MaxPeriod}
	bursts := []int64{0, 1, algorithms.MaxLimit}
	offsets := []int64{0, math.MaxInt64, math.MinInt64, -int64(5*time.Hour+30*time.Minute) / 1000}
	script := []op{
		{0, math.MaxInt64, algorithms.Normal},
		{0, math.MinInt64, algorithms.Normal},
		{0, algorithms.MaxLimit + 1, algorithms.Normal},
		{0, algorithms.MaxLimit, algorithms.Normal},
		{0, 1, algorithms.Normal},
		{0, 0, algorithms.Normal},
		{1, algorithms.MaxLimit - 1, algorithms.Normal},
		{1, 3, algorithms.Force},
		{1, 0, algorithms.Normal},
		{algorithms.MaxPeriod / 2, 1, algorithms.Normal},
		{algorithms.MaxPeriod, algorithms.MaxLimit, algorithms.Normal},
		{algorithms.MaxPeriod, math.MaxInt64, algorithms.Force},
		{0, 1, algorithms.Normal},
		{1, -(algorithms.MaxLimit + 1), algorithms.Normal},
		{1 << 60, 1, algorithms.Normal},
		{0, algorithms.MaxLimit, algorithms.Normal},
		{0, -1, algorithms.Normal},
		{1, 2, algorithms.Normal},
	}
	r := newRand(t)
	for _, kind := range allKinds {
		for _, L := range limits {
			for _, P := range periods {
				for _, B := range bursts {
					if B != 0 && kind != algorithms.TokenBucket && kind != algorithms.GCRA {
						continue
					}
					for _, off := range offsets {
						p := algorithms.Params{Kind: kind, Limit: L, Period: P, Burst: B, Offset: off}
						if p.Validate() != nil {
							t.Fatalf("%+v: %v", p, p.Validate())
						}
						m := newModel(p)
						var s algorithms.State
						now := int64(now0)
						var hist []op
						var gots, wants []algorithms.Result
						for _, o := range script {
							now += o.now
							cost := o.cost
							before := s
							var got algorithms.Result
							s, got = algorithms.Apply(p, s, now, cost, o.mode)
							want := m.apply(now, cost, o.mode)
							hist = append(hist, op{now, cost, o.mode})
							gots, wants = append(gots, got), append(wants, want)
							checkInvariants(t, p, before, op{now, cost, o.mode}, s, got)
							if got != want {
								t.Fatalf("%+v: Apply and the model disagree at the last step:%s", p, fmtHistory(hist, gots, wants))
							}
							checkStep(t, p, before, op{now, cost, o.mode}, s, got, r)
							if t.Failed() {
								t.Fatalf("%+v:%s", p, fmtHistory(hist, gots, wants))
							}
						}
					}
				}
			}
		}
	}
}

// TestGCRAFarArrivalTimes: when now + (units charged)·Period/Limit passes
// 2^62µs, the arrival time continues in State[2] and GCRA still answers
// exactly what TokenBucket answers. (It once wrapped past 2^63 into the
// past, which read as an empty bucket.)
func TestGCRAFarArrivalTimes(t *testing.T) {
	const now0 = 1_700_000_000_000_000
	tests := []struct {
		name string
		p    algorithms.Params
		cost int64
		mode algorithms.Mode
	}{
		// 10 per year, forced 2^53: 2^53·366d/10 ≈ 2.8e28µs ahead.
		{"force", algorithms.Params{Limit: 10, Period: algorithms.MaxPeriod, Burst: 17}, math.MaxInt64, algorithms.Force},
		// The burst alone drains in 6670712169933260·550081µs/10 ≈ 3.7e20µs.
		{"burst", algorithms.Params{Limit: 10, Period: 550081, Burst: 6670712169933260}, 6670712169933260, algorithms.Normal},
		{"one per year", algorithms.Params{Limit: 1, Period: algorithms.MaxPeriod, Burst: algorithms.MaxLimit}, algorithms.MaxLimit, algorithms.Normal},
		// Just past 2^62µs: 2^62-now0 µs ahead at 1 unit per µs, and a bit.
		{"edge", algorithms.Params{Limit: 1, Period: 1, Burst: algorithms.MaxLimit}, algorithms.MaxLimit, algorithms.Normal},
	}
	r := newRand(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb, pg := tt.p, tt.p
			pb.Kind, pg.Kind = algorithms.TokenBucket, algorithms.GCRA
			sb, rb := algorithms.Apply(pb, algorithms.State{}, now0, tt.cost, tt.mode)
			sg, rg := algorithms.Apply(pg, algorithms.State{}, now0, tt.cost, tt.mode)
			m := newModel(pb)
			m.apply(now0, tt.cost, tt.mode)
			if !rg.Allowed || rg.Remaining != 0 || rg != rb {
				t.Fatalf("charge: GCRA %+v, TokenBucket %+v; want equal, allowed, 0 remaining", rg, rb)
			}
			now := int64(now0)
			for i := range 200 {
				now = min(now+pick(r, 0, 1, tt.p.Period, r.Int64N(1<<40), 1<<56), horizon)
				cost := pick(r, 0, 1, -1, pb.Capacity(), -r.Int64N(pb.Capacity())-1, 1<<40, -1<<40)
				mode := pick(r, algorithms.Normal, algorithms.Normal, algorithms.Force)
				before := sg
				sb, rb = algorithms.Apply(pb, sb, now, cost, mode)
				sg, rg = algorithms.Apply(pg, sg, now, cost, mode)
				want := m.apply(now, cost, mode)
				if rg != want || rb != want {
					t.Fatalf("step %d, %v from GCRA state %v: GCRA %+v, TokenBucket %+v, model %+v", i, op{now, cost, mode}, before, rg, rb, want)
				}
			}
		})
	}
}

// TestClockGoingBack replays random sequences whose clock also jumps back,
// sometimes by years or to 0. Nothing may panic or break an invariant;
// fixed and sliding windows and concurrency still match their models (a
// window's counts are kept only while it is the current or the previous
// window). Buckets only keep the invariants: see the report in the test.
func TestClockGoingBack(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			r := newRand(t)
			for range 150 {
				p := randParams(r, kind)
				m := newModel(p)
				var s algorithms.State
				now := randStart(r)
				var hist []op
				var gots, wants []algorithms.Result
				for range 40 {
					step := randStep(r, p)
					if r.IntN(3) == 0 {
						step = -pick(r, 1, step, now, r.Int64N(max(1, now)))
					}
					now = max(0, min(now+step, horizon))
					cost, mode := randCost(r, p)
					before := s
					var got algorithms.Result
					s, got = algorithms.Apply(p, s, now, cost, mode)
					want := m.apply(now, cost, mode)
					hist = append(hist, op{now, cost, mode})
					gots, wants = append(gots, got), append(wants, want)
					checkInvariants(t, p, before, op{now, cost, mode}, s, got)
					// GCRA's arrival time is absolute: a clock that goes back
					// finds the bucket fuller, where TokenBucket waits for
					// the clock to pass its last change. Only with a clock
					// that never goes back do they agree.
					if kind != algorithms.GCRA && got != want {
						t.Errorf("Apply and the model disagree at the last step")
					}
					checkStep(t, p, before, op{now, cost, mode}, s, got, r)
					if t.Failed() {
						t.Fatalf("%+v:%s", p, fmtHistory(hist, gots, wants))
					}
				}
			}
		})
	}
}

// TestOffsetAlignsDailyWindowsToLocalMidnight: in UTC+5:30 a calendar day
// starts at 18:30 UTC, so the window offset is −5h30m (equivalently
// +18h30m): minus the zone's offset east of UTC.
func TestOffsetAlignsDailyWindowsToLocalMidnight(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+30*60)
	day := (24 * time.Hour).Microseconds()
	_, zoneOffset := time.Date(2026, 11, 22, 0, 0, 0, 0, ist).Zone()
	for _, off := range []int64{-int64(zoneOffset) * 1e6, day - int64(zoneOffset)*1e6, -int64(zoneOffset)*1e6 - 7*day} {
		for _, kind := range []algorithms.Kind{algorithms.FixedWindow, algorithms.SlidingWindow} {
			p := algorithms.Params{Kind: kind, Limit: 3, Period: day, Offset: off}
			midnight := time.Date(2026, 11, 23, 0, 0, 0, 0, ist).UnixMicro() // 2026-11-22 18:30 UTC
			for _, at := range []time.Time{
				time.Date(2026, 11, 22, 0, 0, 0, 0, ist),
				time.Date(2026, 11, 22, 5, 29, 59, 0, ist), // 23:59:59 UTC the day before
				time.Date(2026, 11, 22, 5, 30, 0, 0, ist),  // 00:00 UTC
				time.Date(2026, 11, 22, 23, 59, 59, 999999000, ist),
			} {
				now := at.UnixMicro()
				s, res := algorithms.Apply(p, algorithms.State{}, now, 3, algorithms.Normal)
				wantReset := midnight - now // the day's count is gone at local midnight
				if kind == algorithms.SlidingWindow {
					wantReset += day // and weighs in until the next one
				}
				if !res.Allowed || res.ResetAfter != wantReset {
					t.Fatalf("%v offset %d at %v: got %+v, want allowed with ResetAfter %d", kind, off, at, res, wantReset)
				}
				if _, res := algorithms.Apply(p, s, midnight-1, 1, algorithms.Normal); res.Allowed || res.RetryAfter < 1 {
					t.Fatalf("%v offset %d: 1µs before local midnight: got %+v, want denied", kind, off, res)
				}
				if kind == algorithms.FixedWindow {
					if _, res := algorithms.Apply(p, s, midnight, 3, algorithms.Normal); !res.Allowed {
						t.Fatalf("%v offset %d: at local midnight: got %+v, want a fresh day", kind, off, res)
					}
				}
			}
		}
	}
}

// TestForcedChargesSaturate: forced charges stop at MaxLimit units used,
// so refunding MaxLimit (twice: a sliding window's previous count) leaves
// a fresh key, and results match the exact
// model (units used = min(used + cost, MaxLimit)); GCRA matches
// TokenBucket there too.
func TestForcedChargesSaturate(t *testing.T) {
	r := newRand(t)
	for _, kind := range allKinds {
		for range 100 {
			p := randParams(r, kind)
			if p.Limit == 0 {
				continue
			}
			now := randStart(r)
			var s algorithms.State
			var res algorithms.Result
			m := newModel(p)
			var hist []op
			var gots, wants []algorithms.Result
			for _, o := range []op{
				{0, r.Int64N(max(1, p.Capacity())) + 1, algorithms.Normal},
				{r.Int64N(p.Period), algorithms.MaxLimit - r.Int64N(3), algorithms.Force},
				{r.Int64N(3), math.MaxInt64, algorithms.Force},
				{0, 0, algorithms.Normal},
				{r.Int64N(3), 5, algorithms.Force},
				{0, -algorithms.MaxLimit, algorithms.Normal},
				{0, -algorithms.MaxLimit, algorithms.Normal}, // a sliding window's previous count
			} {
				now += o.now
				before := s
				s, res = algorithms.Apply(p, s, now, o.cost, o.mode)
				want := m.apply(now, o.cost, o.mode)
				hist = append(hist, op{now, o.cost, o.mode})
				gots, wants = append(gots, res), append(wants, want)
				checkInvariants(t, p, before, op{now, o.cost, o.mode}, s, res)
				if res != want {
					t.Fatalf("%+v: Apply and the model disagree:%s", p, fmtHistory(hist, gots, wants))
				}
			}
			if d := equivalent(p, s, algorithms.State{}, now, r); d != "" {
				t.Fatalf("%+v: refunding MaxLimit after saturating does not leave a fresh key: %s%s", p, d, fmtHistory(hist, gots, wants))
			}
		}
	}
}
