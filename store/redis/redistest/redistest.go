// Package redistest starts real redis-server processes for tests and
// benchmarks: a single node ([StartServer]) or a Cluster of masters
// ([StartCluster]), on free 127.0.0.1 ports, with data in a temporary
// directory, killed when the test ends. A test calling them is skipped,
// with a message saying so, when redis-server is not installed.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Binary returns the path of redis-server, or "" when it is not installed.
func Binary() string {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return ""
	}
	return p
}

// Server is one running redis-server.
type Server struct {
	// Addr is host:port.
	Addr string
	cmd  *exec.Cmd
}

// Kill stops the server with SIGKILL and waits for it; safe to call twice.
func (s *Server) Kill() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Process returns the server's process, for fault tests (SIGSTOP, SIGCONT).
func (s *Server) Process() *os.Process { return s.cmd.Process }

// StartServer starts a redis-server on a free port and returns its address.
// It is killed when tb ends.
func StartServer(tb testing.TB, args ...string) string {
	tb.Helper()
	return Start(tb, args...).Addr
}

// Start starts a redis-server with extra args and returns it. It is killed
// when tb ends.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		tb.Skip("redis-server not found in PATH: install it (apt-get install redis-server) to run this test")
	}
	dir := tb.TempDir()
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		all := append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--save", "",
			"--appendonly", "no",
			"--protected-mode", "no",
			"--daemonize", "no",
			"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
		}, args...)
		cmd := exec.Command(bin, all...)
		if err := cmd.Start(); err != nil {
			tb.Fatalf("redistest: start %s: %v", bin, err)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
		if lastErr = waitPing(s.Addr, 10*time.Second); lastErr == nil {
			tb.Cleanup(s.Kill)
			return s
		}
		s.Kill() // most likely the port was taken in between: try another
	}
	tb.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return nil
}

// StartCluster starts a Redis Cluster of masters nodes (no replicas), each
// serving an equal share of the 16384 slots, waits until every node sees
// the whole cluster, and returns their addresses. The processes are killed
// when tb ends.
func StartCluster(tb testing.TB, masters int) []string {
	tb.Helper()
	servers := StartClusterServers(tb, masters)
	addrs := make([]string, len(servers))
	for i, srv := range servers {
		addrs[i] = srv.Addr
	}
	return addrs
}

// StartClusterServers is StartCluster returning the servers, for tests
// that kill or pause a node, with extra redis-server args for every node
// (as "--cluster-require-full-coverage", "no").
func StartClusterServers(tb testing.TB, masters int, args ...string) []*Server {
	tb.Helper()
	if masters < 1 {
		tb.Fatalf("redistest: StartCluster(%d)", masters)
	}
	servers := make([]*Server, masters)
	addrs := make([]string, masters)
	for i := range addrs {
		// Each node keeps its cluster config in its own temporary directory.
		servers[i] = Start(tb, append([]string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000"}, args...)...)
		addrs[i] = servers[i].Addr
	}
	ctx := context.Background()
	clients := make([]*goredis.Client, masters)
	for i, a := range addrs {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: a, MaxRetries: -1})
		defer clients[i].Close()
	}
	per := slotCount / masters
	for i, c := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == masters-1 {
			hi = slotCount - 1
		}
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			tb.Fatalf("redistest: CLUSTER ADDSLOTSRANGE on %s: %v", addrs[i], err)
		}
	}
	for i := 1; i < masters; i++ {
		host, port, _ := net.SplitHostPort(addrs[i])
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port).Err(); err != nil {
			tb.Fatalf("redistest: CLUSTER MEET %s: %v", addrs[i], err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, c := range clients {
			if !clusterReady(ctx, c, masters) {
				ready = false
				break
			}
		}
		if ready {
			return servers
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: cluster of %d masters not ready after 30s", masters)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const slotCount = 16384

func clusterReady(ctx context.Context, c *goredis.Client, masters int) bool {
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", masters)) {
		return false
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil || len(slots) != masters {
		return false
	}
	covered := 0
	for _, s := range slots {
		covered += s.End - s.Start + 1
	}
	return covered == slotCount
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitPing waits until addr answers PING with PONG.
func waitPing(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			var line string
			if err == nil {
				line, err = bufio.NewReader(c).ReadString('\n')
			}
			c.Close()
			if err == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("PING answered %q", line)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}
