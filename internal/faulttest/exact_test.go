package faulttest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/redis"
)

// instanceLimiter is one gateway instance: its own go-redis client and
// store, its own clock, and a limiter that never guesses (it fails closed,
// waits for Redis as long as needed, has no breaker), so that every
// decision is Redis's.
func instanceLimiter(t *testing.T, addr string, rules []limiter.Rule, skew time.Duration, opts ...redis.Option) (*limiter.Limiter, *redis.Store) {
	t.Helper()
	s := redis.New(newClient(t, addr, patient), opts...)
	l, err := limiter.New(s, rules,
		limiter.WithClock(func() time.Time { return time.Now().Add(skew) }),
		limiter.WithStoreTimeout(10*time.Second), limiter.WithFailMode(limiter.FailDeny), limiter.WithCircuitBreaker(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return l, s
}

// redisNow is Redis TIME.
func redisNow(t *testing.T, c *goredis.Client) time.Time {
	t.Helper()
	now, err := c.Time(bg).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// scanKeys returns every key matching pattern.
func scanKeys(t *testing.T, c goredis.UniversalClient, pattern string) []string {
	t.Helper()
	var keys []string
	var cursor uint64
	for range 100000 {
		ks, next, err := c.Scan(bg, cursor, pattern, 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
		if cursor = next; cursor == 0 {
			return keys
		}
	}
	t.Fatal("SCAN did not finish")
	return nil
}

// TestExactAcrossInstances runs four instances (separate clients) on one
// Redis, 64 goroutines each, against one key of limit L: exactly L are
// admitted, for a fixed window and a token bucket. With the instances'
// clocks at -30 s, 0, +45 s and 0 the admitted count is the same, since
// the time is Redis TIME. A control run with the callers' clocks
// (WithCallerClock) shows that the skew would otherwise matter.
func TestExactAcrossInstances(t *testing.T) {
	const (
		limit      = 300
		instances  = 4
		goroutines = 64
		attempts   = 3 // 768 attempts for a limit of 300
	)
	addr := startServer(t).Addr
	admin := newClient(t, addr)
	type variant struct {
		name  string
		skews []time.Duration
	}
	aligned := variant{"aligned", []time.Duration{0, 0, 0, 0}}
	skewed := variant{"skewed", []time.Duration{-30 * time.Second, 0, 45 * time.Second, 0}}
	// run reports crossed, and checks nothing, when a fixed window's run
	// straddled a window boundary (it would admit up to twice the limit):
	// the caller runs again with a fresh key.
	run := func(t *testing.T, kind algorithms.Kind, v variant, period time.Duration, attempt int) (admitted int64, crossed bool) {
		user := fmt.Sprintf("%s-%s-%d", kind, v.name, attempt)
		rules := []limiter.Rule{{Name: "exact", Algorithm: kind, Limit: limit, Period: period, By: []dimensions.Dimension{dimensions.User}}}
		opts := []redis.Option{redis.WithKeyPrefix("x:")}
		var ls []*limiter.Limiter
		var s *redis.Store
		for i := range instances {
			var l *limiter.Limiter
			l, s = instanceLimiter(t, addr, rules, v.skews[i], opts...)
			ls = append(ls, l)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var errs atomic.Int64
		var firstErr atomic.Pointer[error]
		per := make([]atomic.Int64, instances)
		for i, l := range ls {
			for range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for range attempts {
						d := l.Check(bg, userReq(user))
						if d.Err != nil {
							errs.Add(1)
							firstErr.CompareAndSwap(nil, &d.Err)
						}
						if d.Allowed {
							per[i].Add(1)
						}
					}
				}()
			}
		}
		before := redisNow(t, admin)
		st := time.Now()
		close(start)
		wg.Wait()
		took := time.Since(st)
		after := redisNow(t, admin)
		if errs.Load() != 0 {
			t.Fatalf("%d checks failed, the first: %v", errs.Load(), *firstErr.Load())
		}
		if kind == algorithms.FixedWindow && before.UnixMicro()/period.Microseconds() != after.UnixMicro()/period.Microseconds() {
			t.Logf("%s/%s: the run crossed a window boundary; running again", kind, v.name)
			return 0, true
		}
		counts := make([]int64, instances)
		for i := range per {
			counts[i] = per[i].Load()
			admitted += counts[i]
		}
		t.Logf("%s/%s: %d of %d attempts admitted in %v, per instance %v", kind, v.name, admitted, instances*goroutines*attempts, took.Round(time.Millisecond), counts)
		// The counter in Redis agrees.
		keys := scanKeys(t, admin, "x:exact/*user="+user)
		if len(keys) != 1 {
			t.Fatalf("keys for %s: %v, want one", user, keys)
		}
		st2, ttl, err := s.Inspect(bg, strings.TrimPrefix(keys[0], "x:"))
		if err != nil {
			t.Fatal(err)
		}
		used := st2[1] // fixed window: [start, count, 0]
		if kind == algorithms.TokenBucket {
			used = st2[0] // token bucket: [used, last, remainder]
		}
		if used != limit || ttl <= 0 {
			t.Errorf("%s: state %v (used %d) ttl %v, want %d used and a TTL", keys[0], st2, used, ttl, limit)
		}
		return admitted, false
	}
	inOneWindow := func(t *testing.T, kind algorithms.Kind, v variant, period time.Duration) int64 {
		for attempt := range 3 {
			if n, crossed := run(t, kind, v, period, attempt); !crossed {
				return n
			}
		}
		t.Fatal("three runs in a row crossed a window boundary")
		return 0
	}
	for _, kind := range []algorithms.Kind{algorithms.FixedWindow, algorithms.TokenBucket} {
		t.Run(kind.String(), func(t *testing.T) {
			// A period of a day: the bucket refills one unit per 288 s.
			a := inOneWindow(t, kind, aligned, 24*time.Hour)
			b := inOneWindow(t, kind, skewed, 24*time.Hour)
			if a != limit || b != limit {
				t.Errorf("admitted %d with aligned clocks and %d with skewed clocks, want exactly %d both times", a, b, limit)
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		// The time source matters: one instance spends a one-minute
		// window's limit, then an instance a whole period ahead tries.
		// On Redis TIME it is in the same window and gets nothing; on the
		// callers' clocks it is in the next window and gets the limit
		// again.
		const small = 10
		// control returns how many of 2×small checks per instance were
		// admitted, and whether the minute of the clock in use (Redis's,
		// or the callers') rolled over meanwhile, which lets one more
		// window in.
		control := func(callerClock bool, attempt int) (admitted int, rolled bool) {
			user := fmt.Sprint("control-", callerClock, "-", attempt)
			rules := []limiter.Rule{{Name: "ctl", Algorithm: algorithms.FixedWindow, Limit: small, Period: time.Minute, By: []dimensions.Dimension{dimensions.User}}}
			opts := []redis.Option{redis.WithKeyPrefix("ctl:")}
			if callerClock {
				opts = append(opts, redis.WithCallerClock())
			}
			behind, _ := instanceLimiter(t, addr, rules, 0, opts...)
			ahead, _ := instanceLimiter(t, addr, rules, time.Minute, opts...)
			minute := func() int64 { return redisNow(t, admin).Unix() / 60 }
			if callerClock {
				minute = func() int64 { return time.Now().Unix() / 60 }
			}
			before := minute()
			for _, l := range []*limiter.Limiter{behind, ahead} {
				for range 2 * small {
					if d := l.Check(bg, userReq(user)); d.Err != nil {
						t.Fatal(d.Err)
					} else if d.Allowed {
						admitted++
					}
				}
			}
			return admitted, before != minute()
		}
		for _, c := range []struct {
			callerClock bool
			want        int
		}{{false, small}, {true, 2 * small}} {
			admitted, rolled := control(c.callerClock, 0)
			for attempt := 1; rolled; attempt++ {
				if attempt == 3 {
					t.Fatal("the minute rolled over during three control runs in a row")
				}
				t.Log("the minute rolled over during the control; running it again")
				admitted, rolled = control(c.callerClock, attempt)
			}
			t.Logf("caller clock %v: %d admitted (limit %d), want %d", c.callerClock, admitted, small, c.want)
			if admitted != c.want {
				t.Errorf("caller clock %v: %d admitted, want %d", c.callerClock, admitted, c.want)
			}
		}
	})
}

// TestMultiDimensionAccounting sends random requests over rules keyed by
// different dimensions, units and timings from four instances, settling,
// cancelling or abandoning the reservations at random. Afterwards every
// counter in Redis equals the sum of what the admitted requests were
// charged, and holds a TTL: a rejected request charged nothing.
func TestMultiDimensionAccounting(t *testing.T) {
	const (
		instances  = 4
		goroutines = 4
		requests   = 60
	)
	day := 24 * time.Hour
	user, tenant, model := dimensions.User, dimensions.Tenant, dimensions.Model
	rules := []limiter.Rule{
		{Name: "user-rpd", Algorithm: algorithms.FixedWindow, Limit: 40, Period: day, By: []dimensions.Dimension{user}},
		{Name: "tenant-tpd", Algorithm: algorithms.FixedWindow, Unit: limiter.Tokens, Limit: 9000, Period: day, By: []dimensions.Dimension{tenant}},
		{Name: "user-model-bucket", Algorithm: algorithms.TokenBucket, Limit: 20, Period: day, By: []dimensions.Dimension{user, model}},
		{Name: "tenant-out", Algorithm: algorithms.FixedWindow, Unit: limiter.OutputTokens, Limit: 6000, Period: day, By: []dimensions.Dimension{tenant}},
		{Name: "tenant-cost", Algorithm: algorithms.FixedWindow, Unit: limiter.Cost, Limit: 150000, Period: day, By: []dimensions.Dimension{tenant}},
		{Name: "model-shadow", Algorithm: algorithms.FixedWindow, Limit: 60, Period: day, By: []dimensions.Dimension{model}, Mode: limiter.Shadow},
	}
	addr := startServer(t).Addr
	admin := newClient(t, addr)

	type outcome int
	const (
		settled outcome = iota
		cancelled
		abandoned
	)
	var mu sync.Mutex
	want := map[string]int64{} // rule name + "|dim=value..." -> units
	var admitted, denied, shadowDenied atomic.Int64
	charge := func(d *limiter.Decision, req *limiter.Request, oc outcome, actual limiter.Usage) {
		mu.Lock()
		defer mu.Unlock()
		for i := range d.Len() {
			rr := d.Result(i)
			key := rr.Rule.Name
			for _, dim := range rr.Rule.By {
				v, _ := req.Facts.Get(dim)
				key += "|" + string(dim) + "=" + v
			}
			var n int64
			switch rr.Rule.Name {
			case "user-rpd", "user-model-bucket":
				n = 1
			case "model-shadow":
				if rr.Allowed {
					n = 1
				}
			case "tenant-tpd":
				switch oc {
				case settled:
					n = actual.InputTokens + actual.OutputTokens
				case abandoned:
					n = req.Estimate.InputTokens + req.Estimate.OutputTokens
				}
			case "tenant-cost":
				switch oc {
				case settled:
					n = actual.Cost
				case abandoned:
					n = req.Estimate.Cost
				}
			case "tenant-out":
				if oc == settled {
					n = actual.OutputTokens
				}
			}
			want[key] += n
		}
	}
	var stores []*redis.Store
	var wg sync.WaitGroup
	for i := range instances {
		l, s := instanceLimiter(t, addr, rules, 0, redis.WithKeyPrefix("acct:"))
		stores = append(stores, s)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				for range requests {
					req := &limiter.Request{
						Facts: dimensions.Facts{
							User:   fmt.Sprint("u", rng.IntN(8)),
							Tenant: fmt.Sprint("t", rng.IntN(3)),
							Model:  fmt.Sprint("m", rng.IntN(3)),
						},
						Estimate: limiter.Usage{InputTokens: 1 + rng.Int64N(60), OutputTokens: 1 + rng.Int64N(120), Cost: 1 + rng.Int64N(900)},
					}
					d := l.Check(bg, req)
					if d.Err != nil {
						t.Errorf("check: %v", d.Err)
						return
					}
					if d.ShadowDenied {
						shadowDenied.Add(1)
					}
					if !d.Allowed {
						denied.Add(1)
						if d.Reservation != nil {
							t.Errorf("a denied request holds a reservation")
						}
						continue
					}
					admitted.Add(1)
					oc := outcome(rng.IntN(3))
					actual := limiter.Usage{
						InputTokens:  rng.Int64N(req.Estimate.InputTokens + 1),
						OutputTokens: rng.Int64N(2*req.Estimate.OutputTokens + 1),
						Cost:         rng.Int64N(2*req.Estimate.Cost + 1),
					}
					var err error
					switch oc {
					case settled:
						err = d.Reservation.Settle(bg, actual)
					case cancelled:
						err = d.Reservation.Cancel(bg)
					}
					if err != nil {
						t.Errorf("settling: %v", err)
						return
					}
					charge(&d, req, oc, actual)
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d admitted, %d denied (%d with a shadow denial), over %d counters", admitted.Load(), denied.Load(), shadowDenied.Load(), len(want))
	if denied.Load() == 0 || admitted.Load() == 0 {
		t.Fatalf("admitted %d, denied %d: the run must both admit and deny", admitted.Load(), denied.Load())
	}
	got := map[string]int64{}
	for _, k := range scanKeys(t, admin, "acct:*") {
		st, ttl, err := stores[0].Inspect(bg, strings.TrimPrefix(k, "acct:"))
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("%s has no TTL (%v)", k, ttl)
		}
		// "acct:" name "/" fingerprint ("|" dim "=" value)*
		name, rest, _ := strings.Cut(strings.TrimPrefix(k, "acct:"), "/")
		_, dims, _ := strings.Cut(rest, "|")
		units := st[1] // fixed window count
		if name == "user-model-bucket" {
			units = st[0] // token bucket: used
		}
		if units < 0 {
			t.Errorf("%s: negative counter %v", k, st)
		}
		got[name+"|"+dims] = units
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %d in Redis, want %d (the admitted requests' charges)", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != 0 {
			t.Errorf("%s: %d in Redis, but no admitted request charged it", k, g)
		}
	}
}
