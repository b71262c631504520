// Package faulttest holds the fault and exactness tests of the limiter on
// real redis-server processes (issues 3 and 9): Redis killed and
// restarted, paused with SIGSTOP, refusing connections, slowed down by a
// proxy, a reply lost after the script ran; exact admission across
// instances with skewed clocks; multi-dimension accounting; Redis Cluster
// failover and resharding; and a soak that mixes algorithms, stores and
// faults.
//
// It has no API: everything is in its tests, which start their own
// redis-server processes on free 127.0.0.1 ports and are skipped when
// redis-server (or, for the Cluster tests, redis-cli) is not installed.
//
// The CI variants are short. TOLLGATE_LONG=1 runs the long ones: a 10 s
// SIGSTOP, a longer soak, and more load around the Cluster faults.
//
//	go test -race ./internal/faulttest/
//	TOLLGATE_LONG=1 go test -race -v -timeout 20m ./internal/faulttest/
package faulttest
