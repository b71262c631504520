package hostiletest

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

const (
	floodCap     = 100_000 // memory.WithMaxKeys
	floodVictims = 16      // keys exhausted before the flood
	victimLimit  = 5
	victimEvery  = 10_000 // flood keys between two checks of a victim
)

// floodKeys is how many keys the flood sends: 10M, or, under the race
// detector unless TOLLGATE_LONG=1, 500k (five times the cap, so that
// 400k checks each evict a key). The race detector slows a check some
// 20-fold: 10M keys take about 18 s without it and 2M about 66 s with it
// on two loaded cores.
func floodKeys() int {
	if raceEnabled && !long() {
		return 500_000
	}
	return 10_000_000
}

// floodKey returns the i'th flood key: distinct for every i (an odd
// multiplier is a bijection on uint64), random-looking, 17 characters.
func floodKey(buf []byte, i uint64) string {
	buf = append(buf[:0], 'f')
	buf = strconv.AppendUint(buf, i*0x9E3779B97F4A7C15, 36)
	return string(buf)
}

func victimKey(i int) string { return "victim-" + strconv.Itoa(i) }

// perUser is one token bucket per user that refills one token every
// 4.8 hours: an exhausted user stays exhausted for the whole test.
var perUser = limiter.Rule{
	Name: "per-user", Algorithm: algorithms.TokenBucket,
	Limit: victimLimit, Period: 24 * time.Hour,
	By: []dimensions.Dimension{dimensions.User},
}

// exhaust spends every victim's quota and checks that the next request
// is denied.
func exhaust(t *testing.T, l *limiter.Limiter) {
	t.Helper()
	ctx := context.Background()
	for v := range floodVictims {
		req := &limiter.Request{Facts: dimensions.Facts{User: victimKey(v)}}
		for i := range victimLimit {
			if d := l.Check(ctx, req); !d.Allowed || d.Err != nil {
				t.Fatalf("victim %d, request %d of %d: allowed %v, err %v; want allowed", v, i+1, victimLimit, d.Allowed, d.Err)
			}
		}
		if d := l.Check(ctx, req); d.Allowed || d.Err != nil {
			t.Fatalf("victim %d over its limit: allowed %v, err %v; want denied", v, d.Allowed, d.Err)
		}
	}
}

// memSample is one reading of the process's memory during a flood.
type memSample struct {
	heapAlloc, heapInuse uint64 // after a GC
	rss                  int64
	keys                 int
}

// monitor samples memory every interval until stop is closed and returns
// the largest readings.
func monitor(s *memory.Store, interval time.Duration, stop <-chan struct{}) <-chan memSample {
	out := make(chan memSample, 1)
	go func() {
		var peak memSample
		tick := time.NewTicker(interval)
		defer tick.Stop()
		sample := func() {
			a, i := heapAfterGC()
			peak.heapAlloc = max(peak.heapAlloc, a)
			peak.heapInuse = max(peak.heapInuse, i)
			peak.rss = max(peak.rss, procStatus("VmRSS"))
			peak.keys = max(peak.keys, s.Len())
		}
		for {
			select {
			case <-stop:
				sample()
				out <- peak
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	return out
}

// TestKeyFlood sends millions of distinct keys through Limiter.Check
// against a memory store capped at 100k keys. The store never holds more
// than the cap, the heap after GC stays bounded, every flood key is
// decided without error, and keys exhausted before the flood stay denied
// throughout: the flood cannot evict a denying key.
func TestKeyFlood(t *testing.T) {
	n := floodKeys()
	settle()
	baseAlloc, _ := heapAfterGC()
	baseRSS := procStatus("VmRSS")

	s := memory.New(memory.WithMaxKeys(floodCap))
	defer s.Close()
	l, err := limiter.New(s, []limiter.Rule{perUser})
	if err != nil {
		t.Fatal(err)
	}
	exhaust(t, l)

	var (
		next, denied, errs, victimChecks, victimLeaks atomic.Int64
		firstLeak                                     atomic.Value
	)
	stop := make(chan struct{})
	peaks := monitor(s, time.Second, stop)
	workers := runtime.GOMAXPROCS(0)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ctx := context.Background()
			buf := make([]byte, 0, 32)
			req := &limiter.Request{}
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req.User = floodKey(buf, uint64(i))
				d := l.Check(ctx, req)
				if d.Err != nil {
					errs.Add(1)
				} else if !d.Allowed {
					denied.Add(1)
				}
				if i%victimEvery == 0 {
					v := int(i/victimEvery) % floodVictims
					victimChecks.Add(1)
					vd := l.Check(ctx, &limiter.Request{Facts: dimensions.Facts{User: victimKey(v)}})
					if vd.Allowed || vd.Err != nil {
						if victimLeaks.Add(1) == 1 {
							firstLeak.Store("victim " + strconv.Itoa(v) + " after " + strconv.FormatInt(i, 10) +
								" flood keys: allowed " + strconv.FormatBool(vd.Allowed) + ", err " + errString(vd.Err))
						}
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	peak := <-peaks

	t.Logf("flood: %d keys, %d workers, race %v, in %v: %.0f keys/s", n, workers, raceEnabled, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	t.Logf("store: cap %d, peak Len %d, Len after %d", floodCap, peak.keys, s.Len())
	t.Logf("heap after GC: before %.1f MiB, peak during flood %.1f MiB (HeapInuse %.1f MiB)", mb(baseAlloc), mb(peak.heapAlloc), mb(peak.heapInuse))
	t.Logf("RSS: before %.1f MiB, peak sampled %.1f MiB, VmHWM %.1f MiB", mbi(baseRSS), mbi(peak.rss), mbi(procStatus("VmHWM")))
	t.Logf("victims: %d checks during the flood, %d allowed or failed", victimChecks.Load(), victimLeaks.Load())

	if peak.keys > floodCap {
		t.Errorf("store held %d keys, cap %d", peak.keys, floodCap)
	}
	if e := errs.Load(); e != 0 {
		t.Errorf("%d of %d flood checks failed with a store error, want 0", e, n)
	}
	if d := denied.Load(); d != 0 {
		t.Errorf("%d of %d fresh flood keys denied, want 0", d, n)
	}
	if victimLeaks.Load() != 0 {
		t.Errorf("an exhausted key was not denied during the flood: first %v", firstLeak.Load())
	}
	if want := int64(n / victimEvery); victimChecks.Load() != want {
		t.Errorf("%d victim checks, want %d", victimChecks.Load(), want)
	}
	const heapBound = 64 * mib
	if peak.heapAlloc > heapBound {
		t.Errorf("heap after GC reached %.1f MiB during the flood, want < %d MiB", mb(peak.heapAlloc), heapBound/mib)
	}
	// The race detector's shadow memory multiplies RSS; the bound is
	// generous either way: it catches a store that keeps every key.
	rssBound := int64(256 * mib)
	if raceEnabled {
		rssBound = 1 * gib
	}
	if peak.rss > rssBound {
		t.Errorf("RSS reached %.1f MiB during the flood, want < %d MiB", mbi(peak.rss), rssBound/mib)
	}
	// After the flood every victim is still denied.
	for v := range floodVictims {
		d := l.Check(context.Background(), &limiter.Request{Facts: dimensions.Facts{User: victimKey(v)}})
		if d.Allowed || d.Err != nil {
			t.Errorf("victim %d after the flood: allowed %v, err %v; want denied", v, d.Allowed, d.Err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
