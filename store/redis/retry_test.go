package redis_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// dropProxy forwards TCP connections to a Redis server. When armed, it
// swallows the next reply the server sends (Redis has executed the
// command) and closes that connection, as a network failure would.
type dropProxy struct {
	ln      net.Listener
	backend string
	armed   atomic.Bool
	dropped atomic.Int32
	wg      sync.WaitGroup
}

func startDropProxy(t *testing.T, backend string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, backend: backend}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *dropProxy) addr() string { return p.ln.Addr().String() }

func (p *dropProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.backend)
		if err != nil {
			client.Close()
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(server, client)
			server.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer client.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 && p.armed.CompareAndSwap(true, false) {
					p.dropped.Add(1)
					server.Close()
					return
				}
				if n > 0 {
					if _, werr := client.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// TestNoDoubleCharge loses the reply of a script that Redis executed. The
// client's default retries would run it again; the store's script calls
// are never retried, so the batch is charged once and Apply reports the
// error.
func TestNoDoubleCharge(t *testing.T) {
	addr := redistest.StartServer(t)
	proxy := startDropProxy(t, addr)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: proxy.addr(), MaxRetries: 3})
	t.Cleanup(func() { c.Close() })

	// The hazard is real: a plain command through the same client and
	// proxy runs twice. (The PING opens the connection first, so that the
	// dropped reply is INCR's, not the handshake's.)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	proxy.armed.Store(true)
	if err := c.Incr(ctx, "plain").Err(); err != nil {
		t.Fatalf("INCR through the proxy: %v (go-redis should have retried)", err)
	}
	if proxy.dropped.Load() != 1 {
		t.Fatal("the proxy dropped no reply")
	}
	if n, _ := c.Get(ctx, "plain").Int(); n != 2 {
		t.Fatalf("plain INCR ran %d times, want 2 (a retried command), or the proxy test proves nothing", n)
	}

	s := redis.New(c, redis.WithCallerClock())
	p := algorithms.Params{Kind: algorithms.FixedWindow, Limit: 100, Period: 60e6}
	ops := []store.Op{{Key: "a", Params: p, Cost: 10}, {Key: "b", Params: p, Cost: 1}}
	res := make([]algorithms.Result, 2)
	// Load the script first, so the lost reply is the script's.
	if err := s.Apply(ctx, t0, ops[:1], res); err != nil {
		t.Fatal(err)
	}
	for _, many := range []bool{false, true} {
		// Open the connections first (go-redis may keep pipelines on a
		// pool of their own), so that the dropped reply is the script's.
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error { p.Ping(ctx); p.Ping(ctx); return nil }); err != nil {
			t.Fatal(err)
		}
		proxy.armed.Store(true)
		var err error
		if many {
			err = s.ApplyMany(ctx, t0, []redis.Decision{{Ops: ops, Results: res}, {Ops: ops[1:], Results: res[1:]}})
		} else {
			err = s.Apply(ctx, t0, ops, res)
		}
		if err == nil {
			t.Fatalf("many=%v: Apply with its reply lost: no error", many)
		}
	}
	if got := proxy.dropped.Load(); got != 3 {
		t.Fatalf("the proxy dropped %d replies, want 3", got)
	}
	// a: 10 (before) + 10 (Apply) + 10 (ApplyMany's first decision) = 30;
	// b: 1 + 1 + 1 = 3. A retry would have made 40 and 5.
	peek := []store.Op{{Key: "a", Params: p}, {Key: "b", Params: p}}
	if err := s.Peek(ctx, t0, peek, res); err != nil {
		t.Fatal(err)
	}
	if res[0].Remaining != 70 || res[1].Remaining != 97 {
		t.Fatalf("Remaining %d and %d, want 70 and 97: a lost reply was charged twice (or never)", res[0].Remaining, res[1].Remaining)
	}
}
