package faulttest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// long reports whether the long variants run (TOLLGATE_LONG=1).
func long() bool { return os.Getenv("TOLLGATE_LONG") == "1" }

// server is a redis-server on a fixed 127.0.0.1 port that a test can kill,
// restart on the same port, pause and resume. redistest.Start picks a new
// port on each start, so restarts need this.
type server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string
	Addr string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startServer starts a redis-server on a free port; it is killed when t ends.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	bin := redistest.Binary()
	if bin == "" {
		t.Skip("redis-server not found in PATH: install it (apt-get install redis-server) to run this test")
	}
	s := &server{t: t, bin: bin, dir: t.TempDir(), args: args}
	var err error
	for range 5 {
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if err = s.start(); err == nil {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", err)
	return nil
}

// start runs redis-server on s.port and waits until it answers PING.
func (s *server) start() error {
	all := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}, s.args...)
	cmd := exec.Command(s.bin, all...)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	if err := waitPing(s.Addr, 10*time.Second); err != nil {
		s.kill()
		return err
	}
	return nil
}

// restart starts the server again on the same port after kill.
func (s *server) restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server on %s: %v", s.Addr, err)
	}
}

// kill stops the server with SIGKILL and waits for it; safe to repeat.
func (s *server) kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies too, but be sure
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("signal %v: server not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

func (s *server) pause()  { s.signal(syscall.SIGSTOP) }
func (s *server) resume() { s.signal(syscall.SIGCONT) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPing waits until addr answers PING with PONG.
func waitPing(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = ping(addr, 200*time.Millisecond); err == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

// ping sends one PING on a fresh connection.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err = c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// newClient returns a client of addr set up as a gateway should use it
// with the limiter: ContextTimeoutEnabled, so that the limiter's store
// deadline reaches the socket (go-redis ignores the context's deadline
// otherwise), and one dial attempt per connection (go-redis otherwise
// tries 5 times, 100ms apart, so a refused connection costs the whole
// store deadline). Closed when t ends.
func newClient(t testing.TB, addr string, tweak ...func(*goredis.Options)) *goredis.Client {
	opt := &goredis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           250 * time.Millisecond,
		DialerRetries:         1,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
	}
	for _, f := range tweak {
		f(opt)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// patient is the client tweak of the exactness tests: they measure
// decisions, not faults, so nothing may time out on a loaded machine.
func patient(o *goredis.Options) {
	o.PoolSize = 64
	o.DialTimeout = 10 * time.Second
	o.PoolTimeout = 10 * time.Second
	o.ReadTimeout = 10 * time.Second
	o.WriteTimeout = 10 * time.Second
}

// latencies summarizes durations.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func (l latencies) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(l), l.pct(0.5).Round(10*time.Microsecond),
		l.pct(0.99).Round(10*time.Microsecond), l.pct(1).Round(10*time.Microsecond))
}

// waitFor polls cond every step until it holds or within passes; it
// reports whether it held.
func waitFor(within, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}

var bg = context.Background()

// quiet silences go-redis's own logging (a refused dial is logged on every
// attempt), which would bury the figures the tests log.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quiet{})
	os.Exit(m.Run())
}
