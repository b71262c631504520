package faulttest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
)

// clusterNode is one node of a cluster the test started.
type clusterNode struct {
	srv    *server
	id     string
	master string // the master's id, for a replica
}

// startReplicatedCluster starts a Redis Cluster of 3 masters with one
// replica each (redistest.StartCluster has no replicas), with a 1 s node
// timeout so that a failover takes seconds, and waits until every replica
// is in sync.
func startReplicatedCluster(t *testing.T) []*clusterNode {
	t.Helper()
	servers := createCluster(t, 6, 1, "--cluster-replica-validity-factor", "0",
		"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
	var nodes []*clusterNode
	for _, s := range servers {
		nodes = append(nodes, &clusterNode{srv: s})
	}
	ok := waitFor(30*time.Second, 50*time.Millisecond, func() bool {
		masters, synced := 0, 0
		for _, n := range nodes {
			c := goredis.NewClient(&goredis.Options{Addr: n.srv.Addr, MaxRetries: -1})
			info, err1 := c.ClusterInfo(bg).Result()
			repl, err2 := c.Info(bg, "replication").Result()
			id, err3 := c.Do(bg, "CLUSTER", "MYID").Text()
			self, err4 := c.ClusterNodes(bg).Result()
			c.Close()
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") {
				return false
			}
			n.id, n.master = id, ""
			switch {
			case strings.Contains(repl, "role:master"):
				masters++
			case strings.Contains(repl, "master_link_status:up"):
				// The replica's own view names its master: node 0's
				// view may not show the replica's role yet.
				n.master = masterOf(self)
				if n.master == "" {
					return false
				}
				synced++
			}
		}
		return masters == 3 && synced == 3
	})
	if !ok {
		t.Fatal("the cluster of 3 masters and 3 replicas was not ready within 30s")
	}
	return nodes
}

// masterOf returns the master's id from a replica's CLUSTER NODES reply
// (the "myself" line), or "" if the node does not see itself as a replica
// of a known master yet.
func masterOf(nodes string) string {
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.Contains(f[2], "myself") && strings.Contains(f[2], "slave") && f[3] != "-" {
			return f[3]
		}
	}
	return ""
}

// createCluster starts n cluster-enabled servers with a 1 s node timeout
// (and extra args), and joins them with redis-cli --cluster create into
// n/(replicas+1) masters with replicas each. It does not wait for the
// cluster to be ready.
func createCluster(t *testing.T, n, replicas int, args ...string) []*server {
	t.Helper()
	if redistest.Binary() == "" {
		t.Skip("redis-server not found in PATH: install it (apt-get install redis-server) to run this test")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not found in PATH: install it (apt-get install redis-tools) to run this test")
	}
	var servers []*server
	create := []string{"--cluster", "create"}
	for range n {
		s := startServer(t, append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000"}, args...)...)
		servers = append(servers, s)
		create = append(create, s.Addr)
	}
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	create = append(create, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	return servers
}

// newClusterClient returns a Cluster client set up like newClient.
// A reload interval of 0 keeps go-redis's default.
func newClusterClient(t *testing.T, addrs []string, reload time.Duration) *goredis.ClusterClient {
	c := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:                      addrs,
		ClusterStateReloadInterval: reload,
		ContextTimeoutEnabled:      true,
		DialTimeout:                250 * time.Millisecond,
		DialerRetries:              1,
		ReadTimeout:                2 * time.Second,
		WriteTimeout:               2 * time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// redirectError reports whether err is a Cluster redirection or slot error
// that must never reach the caller.
func redirectError(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "MOVED") || strings.Contains(s, "ASK ") || strings.Contains(s, "CROSSSLOT")
}

// TestClusterFailover kills a master of a 3-master cluster with replicas
// under load: errors happen only from the kill until shortly after the
// replica's promotion, none of them is a MOVED or CROSSSLOT, and every
// decision succeeds afterwards. Decisions span two keys on different
// slots (a per-user and a per-tenant rule).
//
// The client reloads the cluster topology every second
// (ClusterStateReloadInterval): the store's script calls are never retried,
// so go-redis never marks the dead master as failing and, at its default,
// keeps sending to it for up to 60 s after the promotion; see
// TestClusterFailoverDefaultReload.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	const reload = time.Second
	w := runFailover(t, reload, 30*time.Second)
	// Errors end soon after the promotion: the client reloads the
	// topology, and the breaker closes (at most 2 probe intervals).
	if grace := reload + 2*failoverInterval + 500*time.Millisecond; w.afterPromotion > grace {
		t.Errorf("errors went on %v after the promotion, want at most %v", w.afterPromotion, grace)
	}
}

// TestClusterFailoverDefaultReload is the failover with a Cluster client
// left at go-redis's default topology reload (60 s): the store itself asks
// the client to reload its slot map after a connection error, so errors
// end soon after the promotion anyway.
func TestClusterFailoverDefaultReload(t *testing.T) {
	t.Parallel()
	w := runFailover(t, 0, 30*time.Second)
	if grace := 2*failoverInterval + 2*time.Second; w.afterPromotion > grace {
		t.Errorf("errors went on %v after the promotion, want at most %v", w.afterPromotion.Round(time.Millisecond), grace)
	}
}

const failoverInterval = 200 * time.Millisecond

type failoverWindow struct {
	promotion      time.Duration // kill to promotion
	afterPromotion time.Duration // promotion to the last error
}

// runFailover runs the load, kills a master, waits for its replica's
// promotion, then until the load has run 1 s without an error (at most
// quietWithin after the promotion), and checks the errors.
func runFailover(t *testing.T, reload, quietWithin time.Duration) failoverWindow {
	t.Helper()
	quiet := time.Second
	if long() {
		quiet = 10 * time.Second
	}
	nodes := startReplicatedCluster(t)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.srv.Addr)
	}
	cc := newClusterClient(t, addrs, reload)
	rules := []limiter.Rule{
		{Name: "u", Algorithm: algorithms.FixedWindow, Limit: 1e9, Period: time.Hour, By: []dimensions.Dimension{dimensions.User}, OnStoreError: limiter.FailDeny},
		{Name: "t", Algorithm: algorithms.FixedWindow, Limit: 1e9, Period: time.Hour, By: []dimensions.Dimension{dimensions.Tenant}, OnStoreError: limiter.FailDeny},
	}
	l, err := limiter.New(redis.New(cc), rules, limiter.WithStoreTimeout(500*time.Millisecond), limiter.WithCircuitBreaker(5, failoverInterval))
	if err != nil {
		t.Fatal(err)
	}
	var lastErr atomic.Int64 // unix ns
	ld := startLoad(8, 1000000, 2*time.Millisecond, func(w, i int) sample {
		req := &limiter.Request{Facts: dimensions.Facts{User: fmt.Sprint("u", (w*131+i)%64), Tenant: fmt.Sprint("t", i%8)}}
		st := time.Now()
		d := l.Check(bg, req)
		if d.Err != nil {
			lastErr.Store(time.Now().UnixNano())
		}
		return sample{start: st, lat: time.Since(st), allowed: d.Allowed, err: d.Err}
	})
	time.Sleep(time.Second)

	var victim, heir *clusterNode
	for _, n := range nodes {
		if n.master != "" {
			heir = n
			break
		}
	}
	for _, n := range nodes {
		if heir != nil && n.id == heir.master {
			victim = n
		}
	}
	if victim == nil {
		ld.finish()
		t.Fatal("no master with a replica found")
	}
	tKill := time.Now()
	victim.srv.kill()
	heirClient := goredis.NewClient(&goredis.Options{Addr: heir.srv.Addr, MaxRetries: -1})
	defer heirClient.Close()
	promoted := waitFor(30*time.Second, 20*time.Millisecond, func() bool {
		repl, err := heirClient.Info(bg, "replication").Result()
		if err != nil || !strings.Contains(repl, "role:master") {
			return false
		}
		info, err := heirClient.ClusterInfo(bg).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	tPromoted := time.Now()
	if !promoted {
		ld.finish()
		t.Fatalf("the replica %s was not promoted within 30s of killing %s", heir.srv.Addr, victim.srv.Addr)
	}
	waitFor(quietWithin, 50*time.Millisecond, func() bool {
		return time.Since(time.Unix(0, lastErr.Load())) > quiet
	})
	all := ld.finish()

	var first, last time.Time
	errs, total := 0, 0
	kinds := map[string]int{}
	for _, s := range all {
		total++
		if s.err == nil {
			continue
		}
		errs++
		if redirectError(s.err) {
			t.Errorf("a redirection reached the caller: %v", s.err)
		}
		kinds[errKind(s.err)]++
		if s.end().Before(tKill) {
			t.Errorf("error before the kill: %v", s.err)
		}
		if first.IsZero() || s.start.Before(first) {
			first = s.start
		}
		if s.end().After(last) {
			last = s.end()
		}
	}
	if time.Since(last) < quiet {
		t.Errorf("errors still at the end, %v after the promotion", time.Since(tPromoted).Round(time.Millisecond))
	}
	w := failoverWindow{promotion: tPromoted.Sub(tKill)}
	reloadName := reload.String()
	if reload == 0 {
		reloadName = "go-redis default (60s)"
	}
	t.Logf("topology reload %s: killed master %s, replica %s promoted (cluster ok) %v later; %d checks, %d errors %v",
		reloadName, victim.srv.Addr, heir.srv.Addr, w.promotion.Round(time.Millisecond), total, errs, kinds)
	if errs > 0 {
		w.afterPromotion = max(0, last.Sub(tPromoted))
		t.Logf("failover error window: from %v to %v after the kill, ending %v after the promotion",
			first.Sub(tKill).Round(time.Millisecond), last.Sub(tKill).Round(time.Millisecond), last.Sub(tPromoted).Round(time.Millisecond))
	} else {
		t.Log("no error at all during the failover")
	}
	return w
}

// errKind is a short name for an error, for the logs.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"circuit open", "connection refused", "CLUSTERDOWN", "i/o timeout", "deadline", "EOF", "reset by peer", "broken pipe", "TRYAGAIN", "LOADING", "MOVED", "ASK", "CROSSSLOT"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

// TestClusterResharding moves, under load, the slot that every key of the
// load hashes to (a hash tag) from its master to another, key by key with
// MIGRATE, as redis-cli --cluster reshard does. Single-key decisions never
// fail; two-key decisions fail at most with TRYAGAIN, which Redis answers
// while the keys of one script are split between the two masters, and
// which charges nothing. Afterwards every counter equals the admitted
// charges, on its new master.
func TestClusterResharding(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found in PATH")
	}
	addrs := redistest.StartCluster(t, 3)
	cc := newClusterClient(t, addrs, time.Second)
	tag := func(string) string { return "rs" }
	s := redis.New(cc, redis.WithKeyPrefix("rs:"), redis.WithHashTag(tag))
	one, err := limiter.New(s, []limiter.Rule{
		{Name: "one", Algorithm: algorithms.FixedWindow, Limit: 1e9, Period: 24 * time.Hour, By: []dimensions.Dimension{dimensions.User}, OnStoreError: limiter.FailDeny},
	}, limiter.WithStoreTimeout(2*time.Second), limiter.WithCircuitBreaker(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	two, err := limiter.New(s, []limiter.Rule{
		{Name: "two-u", Algorithm: algorithms.FixedWindow, Limit: 1e9, Period: 24 * time.Hour, By: []dimensions.Dimension{dimensions.User}, OnStoreError: limiter.FailDeny},
		{Name: "two-t", Algorithm: algorithms.FixedWindow, Limit: 1e9, Period: 24 * time.Hour, By: []dimensions.Dimension{dimensions.Tenant}, OnStoreError: limiter.FailDeny},
	}, limiter.WithStoreTimeout(2*time.Second), limiter.WithCircuitBreaker(0, 0))
	if err != nil {
		t.Fatal(err)
	}

	slot, err := cc.ClusterKeySlot(bg, "{rs}").Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := func() string {
		slots, err := cc.ClusterSlots(bg).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) {
				return r.Nodes[0].Addr
			}
		}
		t.Fatalf("slot %d has no owner", slot)
		return ""
	}
	src := owner()
	dst := addrs[0]
	if dst == src {
		dst = addrs[1]
	}
	node := func(addr string) *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	srcC, dstC := node(src), node(dst)
	srcID, err := srcC.Do(bg, "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := dstC.Do(bg, "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	charged := map[string]int64{} // rule|dim=value -> admitted charges
	var tryAgain atomic.Int64
	ld := startLoad(8, 100000, 2*time.Millisecond, func(w, i int) sample {
		req := &limiter.Request{Facts: dimensions.Facts{User: fmt.Sprint("u", (w*37+i)%40), Tenant: fmt.Sprint("t", i%6)}}
		l, name := one, "one"
		if w%2 == 1 {
			l, name = two, "two"
		}
		st := time.Now()
		d := l.Check(bg, req)
		smp := sample{user: name, start: st, lat: time.Since(st), allowed: d.Allowed, err: d.Err}
		if d.Err == nil && d.Allowed {
			mu.Lock()
			for j := range d.Len() {
				rr := d.Result(j)
				v, _ := req.Facts.Get(rr.Rule.By[0])
				charged[rr.Rule.Name+"|"+string(rr.Rule.By[0])+"="+v]++
			}
			mu.Unlock()
		}
		if d.Err != nil && strings.Contains(d.Err.Error(), "TRYAGAIN") {
			tryAgain.Add(1)
		}
		return smp
	})
	time.Sleep(500 * time.Millisecond)

	// Move the slot, one key at a time, slowly, as the load goes on.
	tMove := time.Now()
	dstHost, dstPort, _ := net.SplitHostPort(dst)
	must := func(c *goredis.Client, args ...any) {
		t.Helper()
		if err := c.Do(bg, args...).Err(); err != nil {
			ld.finish()
			t.Fatalf("%v on %s: %v", args, c.Options().Addr, err)
		}
	}
	must(dstC, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID)
	must(srcC, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID)
	moved := 0
	for range 10000 {
		keys, err := srcC.ClusterGetKeysInSlot(bg, int(slot), 1).Result()
		if err != nil {
			ld.finish()
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		must(srcC, "MIGRATE", dstHost, dstPort, "", 0, 5000, "KEYS", keys[0])
		moved++
		time.Sleep(20 * time.Millisecond)
	}
	for _, a := range addrs {
		must(node(a), "CLUSTER", "SETSLOT", slot, "NODE", dstID)
	}
	tMoved := time.Now()
	time.Sleep(time.Second)
	all := ld.finish()

	errs := map[string]int{}
	for _, smp := range all {
		if smp.err == nil {
			continue
		}
		errs[smp.user+": "+errKind(smp.err)]++
		switch {
		case redirectError(smp.err):
			t.Errorf("a redirection reached the caller: %v", smp.err)
		case smp.user == "one":
			t.Errorf("single-key decision failed during resharding: %v", smp.err)
		case !strings.Contains(smp.err.Error(), "TRYAGAIN"):
			t.Errorf("two-key decision failed with %v, want TRYAGAIN at most", smp.err)
		}
	}
	t.Logf("slot %d moved from %s to %s in %v (%d keys, one by one) under load: %d checks, errors %v",
		slot, src, dst, tMoved.Sub(tMove).Round(time.Millisecond), moved, len(all), errs)
	if got := owner(); got != dst {
		t.Fatalf("slot %d is served by %s, want %s", slot, got, dst)
	}
	// Every counter, now on dst, equals the admitted charges.
	keys, err := dstC.Keys(bg, "rs:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, k := range keys {
		st, ttl, err := s.Inspect(bg, strings.TrimPrefix(k, "rs:{rs}"))
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("%s has no TTL", k)
		}
		name, rest, _ := strings.Cut(strings.TrimPrefix(k, "rs:{rs}"), "/")
		_, dims, _ := strings.Cut(rest, "|")
		got[name+"|"+dims] = st[1]
	}
	if n, err := srcC.DBSize(bg).Result(); err != nil || n != 0 {
		t.Errorf("the old master still holds %d keys (err %v)", n, err)
	}
	for k, w := range charged {
		if got[k] != w {
			t.Errorf("%s: %d on the new master, want %d admitted charges", k, got[k], w)
		}
	}
	if len(got) != len(charged) {
		t.Errorf("%d counters on the new master, %d charged", len(got), len(charged))
	}
}
