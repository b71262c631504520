package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/store"
)

// ErrNodeDown is the error of a script call the store did not send
// because its Cluster master failed three times in a row (a dead
// connection or a timeout, not an error reply): for a second after that,
// calls to that node fail at once instead of each waiting for its
// deadline; then one call probes it. It comes wrapped with the node's
// address, and with store.ErrPartial while other masters answer.
var ErrNodeDown = errors.New("node failing, call not sent")

// nodeFailures is how many consecutive failures (a dead connection or a
// timeout, not an error reply) open a Cluster node's breaker;
// nodeInterval is how long it stays open before one call probes the node.
const (
	nodeFailures = 3
	nodeInterval = time.Second
)

// nodes tracks the masters of a Cluster client: whether each answered
// its last call, and a breaker per node. With it the store tells a dead
// node from a dead store: an error on a node while another answers is
// wrapped with store.ErrPartial (the limiter's circuit breaker does not
// count it, so the keys of healthy nodes keep being decided), and calls
// to a node that keeps failing fail at once instead of each waiting for
// its deadline.
type nodes struct {
	mu    sync.Mutex                       // serializes adding a node
	byAdr atomic.Pointer[map[string]*node] // copied on write: reads take no lock
}

// node is one master's health.
type node struct {
	addr      string
	failures  atomic.Int64 // consecutive
	openUntil atomic.Int64 // Unix ns; 0 while closed
	down      atomic.Bool  // its last call failed
}

// nodeFor returns the health of the master that serves key, or nil when
// the client is not a Cluster client or cannot tell (no slot map yet).
func (s *Store) nodeFor(ctx context.Context, key string) *node {
	if s.cluster == nil {
		return nil
	}
	c, err := s.cluster.MasterForKey(ctx, key)
	if err != nil {
		return nil
	}
	addr := c.Options().Addr
	if m := s.nodes.byAdr.Load(); m != nil {
		if n := (*m)[addr]; n != nil {
			return n
		}
	}
	s.nodes.mu.Lock()
	defer s.nodes.mu.Unlock()
	old := s.nodes.byAdr.Load()
	if old != nil {
		if n := (*old)[addr]; n != nil {
			return n
		}
	}
	m := make(map[string]*node, 1)
	if old != nil {
		maps.Copy(m, *old)
	}
	n := &node{addr: addr}
	m[addr] = n
	s.nodes.byAdr.Store(&m)
	return n
}

// allow reports whether a call to n may be sent: its breaker is closed,
// or open past its interval and this caller won the probe.
func (n *node) allow() bool {
	if n == nil {
		return true
	}
	until := n.openUntil.Load()
	if until == 0 {
		return true
	}
	now := time.Now().UnixNano()
	return now >= until && n.openUntil.CompareAndSwap(until, now+int64(nodeInterval))
}

// record notes the outcome of a call to n: err nil or an error reply from
// Redis means the node answered.
func (n *node) record(err error) {
	if n == nil {
		return
	}
	var reply goredis.Error
	if err == nil || errors.As(err, &reply) {
		// Loads first: on the normal path nothing is written, so callers
		// do not contend for the node's cache line.
		if n.down.Load() {
			n.down.Store(false)
		}
		if n.failures.Load() != 0 {
			n.failures.Store(0)
		}
		if n.openUntil.Load() != 0 {
			n.openUntil.Store(0)
		}
		return
	}
	n.down.Store(true)
	if n.failures.Add(1) >= nodeFailures {
		n.openUntil.CompareAndSwap(0, time.Now().Add(nodeInterval).UnixNano())
	}
}

// othersUp reports whether a master other than n answered its last call.
func (s *Store) othersUp(n *node) bool {
	m := s.nodes.byAdr.Load()
	if m == nil {
		return false
	}
	for _, o := range *m {
		if o != n && !o.down.Load() {
			return true
		}
	}
	return false
}

// nodeError wraps the error of a call to n with the node's address, and
// with store.ErrPartial when another master answers.
func (s *Store) nodeError(n *node, err error) error {
	if n == nil {
		return err
	}
	var reply goredis.Error
	if errors.As(err, &reply) {
		return err // the node answered: not a node failure
	}
	if s.othersUp(n) {
		return fmt.Errorf("node %s: %w (%w)", n.addr, err, store.ErrPartial)
	}
	return fmt.Errorf("node %s: %w", n.addr, err)
}
