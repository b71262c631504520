package faulttest

import (
	"sync"
	"time"
)

// sample is one check made under load.
type sample struct {
	phase    int32
	user     string
	start    time.Time
	lat      time.Duration
	allowed  bool
	storeErr bool // Limiting.StoreError
	err      error
}

func (s sample) end() time.Time { return s.start.Add(s.lat) }

// load runs workers that each call fn at most max times, pace apart,
// until stopped.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
}

func startLoad(workers, max int, pace time.Duration, fn func(w, i int) sample) *load {
	l := &load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var mine []sample
			defer func() {
				l.mu.Lock()
				l.samples = append(l.samples, mine...)
				l.mu.Unlock()
			}()
			for i := range max {
				select {
				case <-l.stop:
					return
				default:
				}
				mine = append(mine, fn(w, i))
				if pace > 0 {
					time.Sleep(pace)
				}
			}
		}()
	}
	return l
}

// finish stops the workers and returns every sample.
func (l *load) finish() []sample {
	close(l.stop)
	l.wg.Wait()
	return l.samples
}
