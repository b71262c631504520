package memory

import (
	"math/bits"
	"runtime"
	"time"
)

// Defaults and bounds of the options.
const (
	// DefaultMaxKeys is the cap on keys when WithMaxKeys is not given.
	DefaultMaxKeys = 1_000_000
	// DefaultShards is the least number of shards when WithShards is not
	// given; more machines' cores raise it to 4×GOMAXPROCS, and a small
	// cap on keys lowers it (see WithShards).
	DefaultShards = 64
	// MaxShards is the largest number of shards.
	MaxShards = 1024
	// maxPerShard is the most entries one shard indexes (24 bits of a slot).
	maxPerShard = 1<<24 - 1
)

// Option configures a Store.
type Option func(*config)

type config struct {
	shards  int // 0: derived from maxKeys and GOMAXPROCS
	maxKeys int
	janitor time.Duration
}

// WithShards sets the number of shards, rounded up to a power of two and
// bounded to [1, MaxShards]. The default is DefaultShards, or 4×GOMAXPROCS
// rounded up if larger, lowered so that each shard has room for at least
// 256 keys.
func WithShards(n int) Option {
	return func(c *config) { c.shards = max(1, min(n, MaxShards)) }
}

// WithMaxKeys caps the number of keys the store holds, across shards, at
// least 1. The default is DefaultMaxKeys.
func WithMaxKeys(n int) Option {
	return func(c *config) { c.maxKeys = max(1, n) }
}

// WithJanitor starts a goroutine that calls Sweep every interval, until
// Close. It reads no clock: it sweeps at the latest now any Apply has
// passed, so it agrees with the caller's clock whatever that is. Off by
// default; an interval of 0 or less leaves it off.
func WithJanitor(interval time.Duration) Option {
	return func(c *config) { c.janitor = interval }
}

// shardCount returns the number of shards for c: a power of two.
func (c *config) shardCount() int {
	n := c.shards
	if n == 0 {
		n = ceilPow2(max(DefaultShards, 4*runtime.GOMAXPROCS(0)))
		for n > 1 && c.maxKeys/n < 256 {
			n /= 2
		}
	}
	// Each shard indexes at most maxPerShard entries: leave room for an
	// uneven spread.
	n = max(n, (c.maxKeys+maxPerShard/2-1)/(maxPerShard/2))
	return ceilPow2(min(max(n, 1), MaxShards))
}

func ceilPow2(n int) int { return 1 << bits.Len(uint(n-1)) }
