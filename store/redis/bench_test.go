package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// BenchmarkRedis measures decisions against a real redis-server, next to
// go-redis PING and EVALSHA of "return 1" at the same concurrency. Each
// goroutine has its own keys; limits are high enough that every decision
// is admitted and writes. Goroutines = parallelism × GOMAXPROCS.
func BenchmarkRedis(b *testing.B) {
	addr := redistest.StartServer(b)
	ctx := context.Background()
	for _, g := range []int{1, 8, 64} {
		c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: g + 4})
		defer c.Close()
		sha, err := c.ScriptLoad(ctx, "return 1").Result()
		if err != nil {
			b.Fatal(err)
		}
		run := func(name string, body func(pb *testing.PB, id int64)) {
			b.Run(fmt.Sprintf("%s/goroutines=%d", name, g), func(b *testing.B) {
				b.ReportAllocs()
				var ids atomic.Int64
				b.SetParallelism(max(1, g/procs()))
				before := serverUsec(b, c)
				b.RunParallel(func(pb *testing.PB) { body(pb, ids.Add(1)) })
				// Time Redis spent executing the commands (INFO commandstats),
				// excluding its network handling.
				b.ReportMetric(float64(serverUsec(b, c)-before)*1e3/float64(b.N), "server-ns/op")
			})
		}
		run("ping", func(pb *testing.PB, _ int64) {
			for pb.Next() {
				if err := c.Ping(ctx).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		// The floor of any counting script: TIME, GET and SET with a TTL
		// on one key, no arithmetic.
		floor, err := c.ScriptLoad(ctx, floorScript).Result()
		if err != nil {
			b.Fatal(err)
		}
		run("evalsha-floor", func(pb *testing.PB, id int64) {
			keys := []string{"floor:" + strconv.FormatInt(id, 10)}
			for pb.Next() {
				if err := c.EvalSha(ctx, floor, keys).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		run("evalsha-return1", func(pb *testing.PB, _ int64) {
			for pb.Next() {
				if err := c.EvalSha(ctx, sha, nil).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		s := redis.New(c, redis.WithKeyPrefix("bench:"))
		for _, rules := range []int{1, 4} {
			run(fmt.Sprintf("decision-%drules", rules), func(pb *testing.PB, id int64) {
				kinds := []algorithms.Kind{algorithms.TokenBucket, algorithms.FixedWindow, algorithms.GCRA, algorithms.SlidingWindow}
				ops := make([]store.Op, rules)
				for i := range ops {
					ops[i] = store.Op{
						Key:    "g" + strconv.FormatInt(id, 10) + ":r" + strconv.Itoa(i),
						Params: algorithms.Params{Kind: kinds[i], Limit: 1e12, Period: 60e6},
						Cost:   1,
					}
				}
				res := make([]algorithms.Result, rules)
				for pb.Next() {
					if err := s.Apply(ctx, 0, ops, res); err != nil {
						b.Error(err)
						return
					}
					if !res[0].Allowed {
						b.Errorf("denied: %+v", res[0])
						return
					}
				}
			})
		}
	}
}

const floorScript = `
local t = redis.call('TIME')
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], t[1] .. ' ' .. t[2] .. ' 0', 'PX', 60000)
return '1 1 0 9 0 60000000'`

// serverUsec returns the total µs Redis spent in commands, from INFO
// commandstats.
func serverUsec(b *testing.B, c *goredis.Client) int64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		if i := strings.Index(line, ",usec="); i >= 0 {
			rest := line[i+len(",usec="):]
			if j := strings.IndexByte(rest, ','); j >= 0 {
				n, _ := strconv.ParseInt(rest[:j], 10, 64)
				total += n
			}
		}
	}
	return total
}
