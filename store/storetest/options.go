package storetest

import (
	"testing"

	"github.com/tollgate-go/tollgate/store"
)

// DefaultStart is where the suite's clock starts: 2026-01-01T00:00:00Z, in
// microseconds since the Unix epoch.
const DefaultStart int64 = 1_767_225_600_000_000

// Durations in microseconds, the unit of package algorithms.
const (
	millisecond int64 = 1_000
	second            = 1_000 * millisecond
	minute            = 60 * second
	hour              = 60 * minute
)

// Option changes how [Run] runs. The zero configuration runs everything.
type Option func(*config)

type config struct {
	start      int64
	advance    func(t *testing.T, s store.Store, from, to int64)
	goroutines int
	perG       int
	diffOps    int
	seeds      []uint64
}

// WithStart sets where the suite's clock starts, in microseconds since the
// Unix epoch. The default is [DefaultStart].
func WithStart(now int64) Option {
	return func(c *config) { c.start = now }
}

// WithAdvance registers f, called every time the suite moves its clock
// forward, from and to in microseconds since the Unix epoch. A store whose
// keys expire by a clock of its own (for example miniredis, through
// FastForward) uses it to follow the suite's clock. The suite never moves
// its clock backwards. By default nothing is called.
func WithAdvance(f func(t *testing.T, s store.Store, from, to int64)) Option {
	return func(c *config) { c.advance = f }
}

// WithConcurrency sets the concurrent subtests' number of goroutines and
// ops per goroutine. The default is 16 goroutines of 50 ops each; 0 for
// either skips the concurrent subtests.
func WithConcurrency(goroutines, opsPerGoroutine int) Option {
	return func(c *config) { c.goroutines, c.perG = goroutines, opsPerGoroutine }
}

// WithDifferentialOps sets the number of ops of each differential run.
// The default is 3,000 (a few seconds over a network); 0 skips it.
func WithDifferentialOps(n int) Option {
	return func(c *config) { c.diffOps = n }
}

// WithSeeds sets the seeds of the differential runs, one run per seed.
// The default is a fixed seed and a random one; a failure prints its seed,
// so WithSeeds(seed) replays it.
func WithSeeds(seeds ...uint64) Option {
	return func(c *config) { c.seeds = seeds }
}
