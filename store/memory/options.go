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

// WithMaxKeys caps the number of keys the store holds, at least 1. The
// default is DefaultMaxKeys. The cap is split evenly between shards: each
// holds at most ceil(n / shards) keys.
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
		n = max(DefaultShards, 4*runtime.GOMAXPROCS(0))
		n = min(n, max(1, c.maxKeys/256))
	}
	// Each shard indexes at most maxPerShard entries.
	n = max(n, (c.maxKeys+maxPerShard-1)/maxPerShard)
	n = min(max(n, 1), MaxShards)
	return 1 << bits.Len(uint(n-1))
}
