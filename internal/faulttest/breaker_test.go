package faulttest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
)

// TestLatencyBreaker injects latency with a proxy between the store and
// Redis. Below the store deadline nothing fails; above it the breaker
// opens after the configured number of consecutive failures, answers at
// once while open with one probe per interval, and closes by itself after
// the first probe that succeeds.
func TestLatencyBreaker(t *testing.T) {
	const (
		deadline = 150 * time.Millisecond
		interval = 300 * time.Millisecond
		failures = 3
		slow     = 400 * time.Millisecond
		overhead = 100 * time.Millisecond
	)
	srv := startServer(t)
	px := startProxy(t, srv.Addr)
	s := redis.New(newClient(t, px.addr()))
	warmUp(t, s)
	l := faultLimiter(t, s, limiter.FailDeny, deadline, failures, interval)
	check := func(user string) (limiter.Decision, time.Duration) {
		st := time.Now()
		d := l.Check(bg, userReq(user))
		return d, time.Since(st)
	}
	mustPass := func(phase string, n int) latencies {
		t.Helper()
		var ls latencies
		for range n {
			d, lat := check("a")
			if d.Err != nil || !d.Allowed || l.CircuitOpen() {
				t.Fatalf("%s: err=%v allowed=%v open=%v", phase, d.Err, d.Allowed, l.CircuitOpen())
			}
			ls = append(ls, lat)
		}
		return ls
	}
	mustTimeOut := func(phase string) {
		t.Helper()
		d, lat := check("a")
		if !isTimeout(d.Err) || d.Allowed || !d.Limiting.StoreError {
			t.Fatalf("%s: err=%v allowed=%v storeErr=%v, want a fail-closed deadline", phase, d.Err, d.Allowed, d.Limiting.StoreError)
		}
		// One check, not a percentile: allow for a loaded machine, but
		// far below the client's ReadTimeout (2s).
		if lat < deadline || lat > 2*deadline+overhead {
			t.Errorf("%s: a timed-out check took %v, want about the deadline %v", phase, lat, deadline)
		}
	}

	t.Logf("no added latency: %v", mustPass("no latency", 50))
	px.setDelay(20 * time.Millisecond)
	if ls := mustPass("20ms, under the deadline", 10); ls.pct(0) < 20*time.Millisecond {
		t.Fatalf("the proxy added no latency: %v", ls)
	} else {
		t.Logf("20ms added: %v", ls)
	}

	// Failures must be consecutive: a success in between resets the count.
	px.setDelay(slow)
	for range failures - 1 {
		mustTimeOut("slow")
	}
	px.setDelay(0)
	// go-redis may hand the next check a connection it began dialing while
	// replies were slow; let such handshakes finish first.
	time.Sleep(slow + 20*time.Millisecond)
	mustPass("a success between failures", 1)
	px.setDelay(slow)
	for i := range failures {
		if l.CircuitOpen() {
			t.Fatalf("open after %d consecutive failures, want %d", i, failures)
		}
		mustTimeOut("slow")
	}
	if !l.CircuitOpen() {
		t.Fatalf("closed after %d consecutive failures", failures)
	}

	// Open: fast answers, one probe per interval, each failing.
	scripts := px.scripts.Load()
	tOpen := time.Now()
	var fast latencies
	var probes []time.Time
	for time.Since(tOpen) < 5*interval {
		st := time.Now()
		d, lat := check("a")
		switch {
		case d.Allowed || !d.Limiting.StoreError:
			t.Fatalf("open circuit, fail closed: allowed=%v storeErr=%v", d.Allowed, d.Limiting.StoreError)
		case errors.Is(d.Err, limiter.ErrCircuitOpen):
			fast = append(fast, lat)
		case isTimeout(d.Err):
			probes = append(probes, st)
		default:
			t.Fatalf("open circuit: unexpected error %v", d.Err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	open := time.Since(tOpen)
	sent := px.scripts.Load() - scripts
	t.Logf("open for %v: %d answers without the store (%v), %d probes, %d scripts reached the proxy", open.Round(time.Millisecond), len(fast), fast, len(probes), sent)
	if p99 := fast.pct(0.99); p99 > 20*time.Millisecond {
		t.Errorf("open circuit: p99 %v, want answers at once", p99)
	}
	if want := int(open / interval); len(probes) > want+1 || len(probes) < want-1 {
		t.Errorf("%d probes in %v, want about one per %v (%d)", len(probes), open, interval, want)
	}
	for i := 1; i < len(probes); i++ {
		if gap := probes[i].Sub(probes[i-1]); gap < interval-5*time.Millisecond {
			t.Errorf("probes %v apart, want at least the interval %v", gap, interval)
		}
	}
	if sent > int64(len(probes)) {
		t.Errorf("%d scripts sent while open, more than the %d probes: the open circuit called the store", sent, len(probes))
	}

	// Redis fast again: the next probe closes the circuit.
	px.setDelay(0)
	tFix := time.Now()
	var closed time.Duration
	for time.Since(tFix) < 3*interval {
		d, _ := check("a")
		if d.Err == nil {
			closed = time.Since(tFix)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if closed == 0 {
		t.Fatalf("the circuit did not close within %v of the latency going away", 3*interval)
	}
	t.Logf("closed %v after the latency went away (limit 2 probe intervals = %v)", closed.Round(time.Millisecond), 2*interval)
	if closed > 2*interval {
		t.Errorf("closing took %v, more than 2 probe intervals", closed)
	}
	mustPass("closed again", 20)
}

// isTimeout reports whether err is the store deadline: the context's, or
// the socket deadline go-redis derives from it (ContextTimeoutEnabled).
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

// warmUp loads the script and opens a few connections without a
// deadline, so that the first checks are not slowed by them.
func warmUp(t *testing.T, s *redis.Store) {
	t.Helper()
	st := time.Now()
	ops := []store.Op{{Key: "warm-up", Params: algorithms.Params{Kind: algorithms.FixedWindow, Limit: 1, Period: 1e6}}}
	if err := s.Apply(bg, 0, ops, make([]algorithms.Result, 1)); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Apply(bg, 0, ops, make([]algorithms.Result, 1))
		}()
	}
	wg.Wait()
	t.Logf("warm-up (dial, NOSCRIPT, EVAL) took %v", time.Since(st).Round(time.Millisecond))
}

// TestReplyDroppedNoDoubleCharge loses the reply of a script that Redis
// executed, at the limiter level: the check reports the error and follows
// its fail mode, and the counter was charged once (the script ran), never
// twice, although the client retries other commands up to 3 times.
func TestReplyDroppedNoDoubleCharge(t *testing.T) {
	srv := startServer(t)
	px := startProxy(t, srv.Addr)
	l := faultLimiter(t, redis.New(newClient(t, px.addr())), limiter.FailDeny, time.Second, 0, 0)
	remaining := func() int64 {
		t.Helper()
		d := l.Peek(bg, userReq("a"))
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		return d.Limiting.Remaining
	}
	if d := l.Check(bg, userReq("a")); d.Err != nil || !d.Allowed {
		t.Fatalf("first check: %v %v", d.Allowed, d.Err)
	}
	if r := remaining(); r != faultLimit-1 {
		t.Fatalf("Remaining %d after one check", r)
	}
	px.dropOne.Store(true)
	d := l.Check(bg, userReq("a"))
	if px.dropped.Load() != 1 {
		t.Fatal("the proxy dropped no reply")
	}
	if d.Err == nil || d.Allowed || !d.Limiting.StoreError {
		t.Fatalf("check with its reply lost: allowed=%v err=%v storeErr=%v, want a fail-closed error", d.Allowed, d.Err, d.Limiting.StoreError)
	}
	r := remaining()
	t.Logf("reply lost: err=%v; Remaining %d of %d", d.Err, r, faultLimit)
	if r != faultLimit-2 {
		t.Fatalf("Remaining %d, want %d: the lost reply's script was charged %d times, want once", r, faultLimit-2, faultLimit-1-r)
	}
	if d := l.Check(bg, userReq("a")); d.Err != nil || !d.Allowed {
		t.Fatalf("check after the lost reply: %v %v", d.Allowed, d.Err)
	}
	if r := remaining(); r != faultLimit-3 {
		t.Fatalf("Remaining %d after 3 charges", r)
	}
}
