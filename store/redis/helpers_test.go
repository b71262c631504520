package redis_test

import (
	"runtime"
	"testing"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// backend is a Redis the tests run against.
type backend struct {
	name string
	// client returns a new client, closed when t ends.
	client func(t testing.TB) goredis.UniversalClient
}

func miniredisBackend() backend {
	return backend{"miniredis", func(t testing.TB) goredis.UniversalClient {
		m := miniredis.RunT(t)
		c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
		t.Cleanup(func() { c.Close() })
		return c
	}}
}

func realBackend() backend {
	var addr string
	return backend{"redis-server", func(t testing.TB) goredis.UniversalClient {
		if addr == "" {
			addr = redistest.StartServer(t)
		}
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		return c
	}}
}

// newServerClient starts a redis-server for t and returns a client of it.
func newServerClient(t testing.TB) *goredis.Client {
	addr := redistest.StartServer(t)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func backends() []backend {
	return []backend{miniredisBackend(), {"redis-server", func(t testing.TB) goredis.UniversalClient { return newServerClient(t) }}}
}

func procs() int { return runtime.GOMAXPROCS(0) }
