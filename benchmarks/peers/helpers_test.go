package peers

import (
	"hash/maphash"
	"runtime"
	"sync"

	"golang.org/x/time/rate"
)

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// shardedRate is x/time/rate as tollgate's own suite uses it for many keys:
// rate.Limiters in a map split into 64 shards, each behind a mutex.
type shardedRate struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]*rate.Limiter
		_  [40]byte
	}
}

func newShardedRate() *shardedRate {
	s := &shardedRate{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*rate.Limiter)
	}
	return s
}

func (s *shardedRate) allow(key string) bool {
	sh := &s.shards[maphash.String(s.seed, key)&63]
	sh.mu.Lock()
	l := sh.m[key]
	if l == nil {
		l = rate.NewLimiter(huge, huge)
		sh.m[key] = l
	}
	sh.mu.Unlock()
	return l.Allow()
}
