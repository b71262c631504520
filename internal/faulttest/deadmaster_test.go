package faulttest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/redis"
)

// TestClusterDeadMasterLeavesOthersDecided kills one master of a
// 3-master cluster without replicas (cluster-require-full-coverage no, so
// the other masters keep serving their slots): for two seconds, every
// check of a user on a live master is decided by the store, every check of
// a user on the dead master follows its fail mode, and the limiter's
// circuit breaker never opens for the live masters' keys.
func TestClusterDeadMasterLeavesOthersDecided(t *testing.T) {
	t.Parallel()
	nodes := createCluster(t, 3, 0, "--cluster-require-full-coverage", "no")
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr)
	}
	ready := waitFor(30*time.Second, 50*time.Millisecond, func() bool {
		for _, a := range addrs {
			c := goredis.NewClient(&goredis.Options{Addr: a, MaxRetries: -1})
			info, err := c.ClusterInfo(bg).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
	if !ready {
		t.Fatal("the cluster of 3 masters was not ready within 30s")
	}
	cc := newClusterClient(t, addrs, 0)
	// Each user's keys share the slot of "{<user>}".
	tag := func(key string) string {
		_, u, _ := strings.Cut(key, "user=")
		return u
	}
	rules := []limiter.Rule{{Name: "u", Algorithm: algorithms.FixedWindow, Limit: 1e9, Period: time.Hour,
		By: []dimensions.Dimension{dimensions.User}, OnStoreError: limiter.FailDeny}}
	l, err := limiter.New(redis.New(cc, redis.WithHashTag(tag)), rules,
		limiter.WithStoreTimeout(500*time.Millisecond), limiter.WithCircuitBreaker(5, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	victim := nodes[0].Addr
	var live, doomed []string
	for i := 0; len(live) < 8 || len(doomed) < 4; i++ {
		u := fmt.Sprint("user", i)
		m, err := cc.MasterForKey(bg, "{"+u+"}")
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == victim {
			if len(doomed) < 4 {
				doomed = append(doomed, u)
			}
		} else if len(live) < 8 {
			live = append(live, u)
		}
	}
	check := func(u string) limiter.Decision {
		return l.Check(bg, &limiter.Request{Facts: dimensions.Facts{User: u}})
	}
	for _, u := range append(live, doomed...) {
		if d := check(u); !d.Allowed || d.Err != nil {
			t.Fatalf("%s before the kill: allowed=%v err=%v", u, d.Allowed, d.Err)
		}
	}
	nodes[0].kill()

	deadErrs, liveChecks := 0, 0
	for i, start := 0, time.Now(); time.Since(start) < 2*time.Second; i++ {
		u := live[i%len(live)]
		if d := check(u); !d.Allowed || d.Err != nil {
			t.Fatalf("check %d: %s on a live master: allowed=%v err=%v (circuit open: %v)", i, u, d.Allowed, d.Err, l.CircuitOpen())
		}
		liveChecks++
		d := check(doomed[i%len(doomed)])
		if d.Allowed || d.Err == nil || !errors.Is(d.Err, store.ErrPartial) {
			t.Fatalf("check %d on the dead master: allowed=%v err=%v, want a partial failure, denied (fail closed)", i, d.Allowed, d.Err)
		}
		deadErrs++
	}
	if l.CircuitOpen() {
		t.Fatal("the limiter's circuit opened although the other masters answered")
	}
	t.Logf("dead master %s: %d checks on live masters all decided, %d on the dead master failed closed", victim, liveChecks, deadErrs)
}
