package faulttest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy forwards TCP connections to a Redis server on 127.0.0.1. It can
// delay every reply chunk by a set latency (keeping the order of a
// connection's replies), swallow the next reply after the server executed
// the command and close that connection, and it counts the EVALSHA and
// EVAL commands that clients sent through it.
type proxy struct {
	ln      net.Listener
	backend string
	delay   atomic.Int64 // ns added to every server-to-client chunk
	dropOne atomic.Bool  // swallow the next reply chunk and close
	dropped atomic.Int32
	scripts atomic.Int64 // EVALSHA and EVAL commands seen

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.backend, time.Second)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		closeBoth := sync.OnceFunc(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
		p.wg.Add(3)
		go p.upstream(client, server, closeBoth)
		chunks := make(chan chunk, 256)
		go p.downstreamRead(server, chunks, closeBoth)
		go p.downstreamWrite(client, chunks, closeBoth)
	}
}

type chunk struct {
	at   time.Time
	data []byte
}

var (
	evalsha = []byte("evalsha")
	eval    = []byte("$4\r\neval\r\n")
)

// upstream copies client to server, counting script commands.
func (p *proxy) upstream(client, server net.Conn, closeBoth func()) {
	defer p.wg.Done()
	defer closeBoth()
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := client.Read(buf)
		if n > 0 {
			// Count across chunk boundaries by keeping the last few bytes.
			scan := append(tail, buf[:n]...)
			p.scripts.Add(int64(bytes.Count(bytes.ToLower(scan), evalsha) + bytes.Count(bytes.ToLower(scan), eval)))
			tail = append(tail[:0], scan[max(0, len(scan)-9):]...)
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// downstreamRead reads server replies, timestamped, or swallows one and
// closes the connection when armed.
func (p *proxy) downstreamRead(server net.Conn, out chan<- chunk, closeBoth func()) {
	defer p.wg.Done()
	defer close(out)
	for {
		buf := make([]byte, 32<<10)
		n, err := server.Read(buf)
		if n > 0 {
			if p.dropOne.CompareAndSwap(true, false) {
				p.dropped.Add(1)
				closeBoth()
				return
			}
			out <- chunk{time.Now(), buf[:n]}
		}
		if err != nil {
			return
		}
	}
}

// downstreamWrite writes each reply chunk to the client once its delay
// has passed.
func (p *proxy) downstreamWrite(client net.Conn, in <-chan chunk, closeBoth func()) {
	defer p.wg.Done()
	defer closeBoth()
	failed := false
	for c := range in { // drain even after a failed write, so the reader never blocks
		if failed {
			continue
		}
		if d := time.Until(c.at.Add(time.Duration(p.delay.Load()))); d > 0 {
			time.Sleep(d)
		}
		if _, err := client.Write(c.data); err != nil {
			failed = true
			closeBoth()
		}
	}
}
