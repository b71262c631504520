package faulttest

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
	"github.com/tollgate-go/tollgate/store/redis"
)

var failModes = []limiter.FailMode{limiter.FailAllow, limiter.FailDeny, limiter.FailLocal}

const (
	faultLimit     = 1000
	faultInstances = 100 // local share: ceil(1000/100) = 10
	localShare     = 10
)

// faultLimiter is a limiter on s with one per-user fixed-window rule that
// fails as mode says, a memory fallback and the given deadline and breaker.
func faultLimiter(t *testing.T, s *redis.Store, mode limiter.FailMode, timeout time.Duration, failures int, interval time.Duration) *limiter.Limiter {
	t.Helper()
	l, err := limiter.New(s, []limiter.Rule{{
		Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: faultLimit, Period: 24 * time.Hour,
		By: []dimensions.Dimension{dimensions.User}, OnStoreError: mode,
	}}, limiter.WithStoreTimeout(timeout), limiter.WithCircuitBreaker(failures, interval),
		limiter.WithFallback(memory.New(), faultInstances))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func userReq(u string) *limiter.Request {
	return &limiter.Request{Facts: dimensions.Facts{User: u}}
}

// checkSample makes one check and records it.
func checkSample(l *limiter.Limiter, phase int32, user string) sample {
	st := time.Now()
	d := l.Check(bg, userReq(user))
	return sample{phase: phase, user: user, start: st, lat: time.Since(st), allowed: d.Allowed, storeErr: d.Limiting.StoreError, err: d.Err}
}

// checkOutage checks what the limiter answered while the store could not
// decide: every decision reports an error and follows mode.
func checkOutage(t *testing.T, mode limiter.FailMode, out []sample, wantCircuit bool) {
	t.Helper()
	if len(out) == 0 {
		t.Fatal("no check ran during the outage")
	}
	perUser := map[string][2]int{} // attempts, admitted
	circuit := 0
	for _, s := range out {
		if s.err == nil {
			t.Fatalf("check of %s at outage: no error (allowed=%v)", s.user, s.allowed)
		}
		if errors.Is(s.err, limiter.ErrCircuitOpen) {
			circuit++
		}
		switch mode {
		case limiter.FailAllow:
			if !s.allowed || !s.storeErr {
				t.Fatalf("fail open: allowed=%v storeErr=%v err=%v", s.allowed, s.storeErr, s.err)
			}
		case limiter.FailDeny:
			if s.allowed || !s.storeErr {
				t.Fatalf("fail closed: allowed=%v storeErr=%v err=%v", s.allowed, s.storeErr, s.err)
			}
		case limiter.FailLocal:
			c := perUser[s.user]
			c[0]++
			if s.allowed {
				c[1]++
			}
			perUser[s.user] = c
		}
	}
	if wantCircuit && circuit == 0 {
		t.Errorf("the circuit never opened during the outage (%d checks)", len(out))
	}
	for u, c := range perUser {
		if want := min(c[0], localShare); c[1] != want {
			t.Errorf("fail local: user %s admitted %d of %d, want %d (the local share)", u, c[1], c[0], want)
		}
	}
	t.Logf("outage: %d checks (%d with the circuit open), latency %v", len(out), circuit, lats(out))
}

func lats(ss []sample) latencies {
	l := make(latencies, len(ss))
	for i, s := range ss {
		l[i] = s.lat
	}
	return l
}

// TestRedisKilledAndRestarted kills Redis under load and restarts it on
// the same port, for each fail mode: decisions follow the mode during the
// outage, and the limiter recovers by itself within 2 probe intervals of
// Redis answering again.
func TestRedisKilledAndRestarted(t *testing.T) {
	for _, mode := range failModes {
		t.Run(mode.String(), func(t *testing.T) {
			const interval = 300 * time.Millisecond
			srv := startServer(t)
			s := redis.New(newClient(t, srv.Addr))
			warmUp(t, s)
			l := faultLimiter(t, s, mode, 250*time.Millisecond, 3, interval)
			var phase atomic.Int32
			ld := startLoad(4, 5000, 2*time.Millisecond, func(w, i int) sample {
				p := phase.Load()
				return checkSample(l, p, fmt.Sprintf("p%d-u%d", p, i%8))
			})
			time.Sleep(300 * time.Millisecond)
			tKill := time.Now()
			srv.kill()
			phase.Store(1)
			time.Sleep(4 * interval)
			phase.Store(2)
			tRestart := time.Now()
			srv.restart()
			tBack := time.Now()
			time.Sleep(3 * interval)
			all := ld.finish()

			var before, outage, after []sample
			for _, s := range all {
				switch {
				case s.end().Before(tKill):
					before = append(before, s)
				case s.phase == 1:
					outage = append(outage, s)
				case s.phase == 2:
					after = append(after, s)
				}
			}
			for _, s := range before {
				if s.err != nil || !s.allowed {
					t.Fatalf("before the kill: allowed=%v err=%v", s.allowed, s.err)
				}
			}
			checkOutage(t, mode, outage, true)
			// Recovery: the first check that the store decided again.
			var ok *sample
			for i := range after {
				s := &after[i]
				if s.err == nil && (ok == nil || s.end().Before(ok.end())) {
					ok = s
				}
			}
			if ok == nil {
				t.Fatalf("no check succeeded within %v of Redis being back", 3*interval)
			}
			recovery := max(0, ok.end().Sub(tBack))
			// After recovery, Redis answers: no error says it is down. A
			// check may still time out when the machine is overloaded (the
			// race detector on 2 shared cores), and 3 such in a row open
			// the circuit again; tolerate a few and log them.
			late, noise := 0, 0
			for _, s := range after {
				if s.start.After(ok.end()) && s.err != nil {
					late++
					if !s.start.After(ok.end().Add(interval)) {
						continue
					}
					if isTimeout(s.err) || errors.Is(s.err, limiter.ErrCircuitOpen) {
						noise++
						continue
					}
					t.Errorf("error %v at %v after recovery", s.err, s.start.Sub(ok.end()))
				}
				if s.err == nil && !s.allowed {
					t.Errorf("after recovery, %s denied", s.user)
				}
			}
			t.Logf("mode %s: %d checks before the kill, %d during the outage, %d after; redis-server restart took %v; recovery %v after Redis answered (limit 2 probe intervals = %v); %d errors after recovery",
				mode, len(before), len(outage), len(after), tBack.Sub(tRestart).Round(time.Millisecond), recovery.Round(time.Millisecond), 2*interval, late)
			if noise > len(after)/20 {
				t.Errorf("%d of %d checks after recovery timed out or met the circuit open", noise, len(after))
			}
			if recovery > 2*interval {
				t.Errorf("recovery took %v, more than 2 probe intervals (%v)", recovery, 2*interval)
			}
			if l.CircuitOpen() {
				t.Error("the circuit is still open at the end")
			}
		})
	}
}

// TestRedisPaused stops Redis with SIGSTOP (a blackhole: connections open,
// nothing answers) under load: the decision latency p99 stays within the
// store deadline plus a small overhead, the goroutine count stays bounded,
// and the limiter recovers after SIGCONT.
func TestRedisPaused(t *testing.T) {
	for _, failures := range []int{5, 0} {
		t.Run(fmt.Sprintf("breaker=%d", failures), func(t *testing.T) { testPaused(t, failures) })
	}
}

func testPaused(t *testing.T, failures int) {
	pause := 2 * time.Second
	if long() {
		pause = 10 * time.Second
	}
	const (
		deadline = 100 * time.Millisecond
		overhead = 50 * time.Millisecond
		interval = 250 * time.Millisecond
		workers  = 16
	)
	srv := startServer(t)
	s := redis.New(newClient(t, srv.Addr))
	warmUp(t, s)
	l := faultLimiter(t, s, limiter.FailAllow, deadline, failures, interval)
	for i := range 20 { // warm up: open connections
		l.Check(bg, userReq(fmt.Sprint("warm", i)))
	}
	runtime.GC()
	base := runtime.NumGoroutine()
	var phase atomic.Int32
	ld := startLoad(workers, 100000, 5*time.Millisecond, func(w, i int) sample {
		p := phase.Load()
		return checkSample(l, p, fmt.Sprintf("u%d", i%32))
	})
	time.Sleep(300 * time.Millisecond)
	tPause := time.Now()
	srv.pause()
	phase.Store(1)
	peak := 0
	for time.Since(tPause) < pause {
		peak = max(peak, runtime.NumGoroutine())
		time.Sleep(10 * time.Millisecond)
	}
	phase.Store(2)
	srv.resume()
	tBack := time.Now()
	// Wait for a success (long after the pause for a client that queued
	// many connections on the stopped server), then 2 more intervals.
	var okAt atomic.Int64
	waitFor(10*time.Second, 5*time.Millisecond, func() bool {
		d := l.Peek(bg, userReq("probe"))
		if d.Err == nil {
			okAt.Store(time.Now().UnixNano())
		}
		return d.Err == nil
	})
	time.Sleep(2 * interval)
	all := ld.finish()

	var healthy, paused, reached, after []sample
	for _, s := range all {
		switch s.phase {
		case 0:
			if s.end().Before(tPause) {
				healthy = append(healthy, s)
			}
		case 1:
			paused = append(paused, s)
			if !errors.Is(s.err, limiter.ErrCircuitOpen) {
				reached = append(reached, s)
			}
		case 2:
			after = append(after, s)
		}
	}
	if len(paused) == 0 {
		t.Fatal("no check ran during the pause")
	}
	for _, s := range paused {
		if !s.allowed {
			t.Fatalf("fail open while paused: denied, err=%v", s.err)
		}
	}
	pausedErrs, afterErrs := map[string]int{}, map[string]int{}
	for _, s := range paused {
		if s.err != nil {
			pausedErrs[errKind(s.err)]++
		}
	}
	for _, s := range after {
		if s.err != nil {
			afterErrs[errKind(s.err)]++
		}
	}
	t.Logf("errors while paused %v; after SIGCONT %v", pausedErrs, afterErrs)
	pl, rl := lats(paused), lats(reached)
	// The machine's own noise (the race detector on 2 shared cores): the
	// p99 of the healthy checks before the pause, added to the bound.
	noise := lats(healthy).pct(0.99)
	t.Logf("paused %v, breaker failures=%d: %d checks by %d workers, latency %v; the %d that called the store: %v (deadline %v; healthy p99 %v); goroutines: %d before, peak %d during",
		pause, failures, len(paused), workers, pl, len(reached), rl, deadline, noise, base, peak)
	if p99 := pl.pct(0.99); p99 > deadline+overhead+noise {
		t.Errorf("p99 %v while paused, want at most the deadline %v + %v + the healthy p99 %v", p99, deadline, overhead, noise)
	}
	if p99 := rl.pct(0.99); p99 > deadline+overhead+noise {
		t.Errorf("p99 of the checks that called the store %v, want at most the deadline %v + %v + the healthy p99 %v", p99, deadline, overhead, noise)
	}
	// Bounded: the workers, and go-redis's background dials and connection
	// closes, at most a couple per pool slot; not growing with the pause
	// (the 10 s pause peaks about where the 2 s one does).
	if bound := base + workers + 2*poolSize() + 10; peak > bound {
		t.Errorf("goroutines peaked at %d during the pause, base %d with %d workers: want at most %d", peak, base, workers, bound)
	}
	var ok *sample
	for i := range after {
		if s := &after[i]; s.err == nil && (ok == nil || s.end().Before(ok.end())) {
			ok = s
		}
	}
	if ok == nil {
		t.Fatalf("no check succeeded within %v of SIGCONT", time.Since(tBack).Round(time.Millisecond))
	}
	t.Logf("recovery %v after SIGCONT (limit 2 probe intervals = %v)", max(0, ok.end().Sub(tBack)).Round(time.Millisecond), 2*interval)
	if r := ok.end().Sub(tBack); failures > 0 && r > 2*interval {
		t.Errorf("recovery took %v after SIGCONT, more than 2 probe intervals", r)
	}
	if !waitFor(3*time.Second, 20*time.Millisecond, func() bool { return runtime.NumGoroutine() <= base+2 }) {
		t.Errorf("goroutines: %d after the load ended, %d before", runtime.NumGoroutine(), base)
	}
}

// poolSize is go-redis's default pool size.
func poolSize() int { return 10 * runtime.GOMAXPROCS(0) }

// TestConnectionRefused points the store at a port where nothing listens:
// every answer comes fast and follows the fail mode, with and without the
// circuit breaker.
func TestConnectionRefused(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, mode := range failModes {
		for _, failures := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s/breaker=%d", mode, failures), func(t *testing.T) {
				l := faultLimiter(t, redis.New(newClient(t, addr)), mode, 100*time.Millisecond, failures, time.Second)
				var out []sample
				for i := range 200 {
					out = append(out, checkSample(l, 1, fmt.Sprint("u", i%4)))
				}
				if failures == 0 {
					for _, s := range out {
						if errors.Is(s.err, limiter.ErrCircuitOpen) {
							t.Fatal("circuit open with the breaker disabled")
						}
					}
				}
				checkOutage(t, mode, out, failures > 0)
				if p99 := lats(out).pct(0.99); p99 > 20*time.Millisecond {
					t.Errorf("p99 %v with connections refused, want fast answers (< 20ms)", p99)
				}
			})
		}
	}
	// With go-redis's default of 5 dial attempts 100ms apart, a refused
	// connection costs the whole store deadline until the pool has failed
	// PoolSize dials in a row: record it.
	t.Run("default-dial-retries", func(t *testing.T) {
		c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
		t.Cleanup(func() { c.Close() })
		l := faultLimiter(t, redis.New(c), limiter.FailAllow, 100*time.Millisecond, 0, 0)
		var out []sample
		for i := range 40 {
			out = append(out, checkSample(l, 1, fmt.Sprint("u", i%4)))
		}
		checkOutage(t, limiter.FailAllow, out, false)
		slow := 0
		for _, s := range out {
			if s.lat >= 50*time.Millisecond {
				slow++
			}
		}
		t.Logf("go-redis default DialerRetries: %d of %d checks took the whole store deadline", slow, len(out))
	})
}
