package storetest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// lockedModel is the simplest correct store: the reference model behind
// one mutex. With a bug switched on, it is a broken store the suite must
// reject.
type lockedModel struct {
	mu     sync.Mutex
	m      *model
	closed bool
	bug    string
}

func (s *lockedModel) Apply(_ context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if err := store.Validate(ops, results); err != nil && s.bug != "no-validation" {
		return err
	}
	if s.bug != "no-lock" {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	if s.closed {
		return store.ErrClosed
	}
	switch s.bug {
	case "commit-denied":
		// Charges the allowed ops of a denied batch.
		for i, op := range ops {
			st := s.m.states[op.Key]
			st, results[i] = algorithms.Apply(op.Params, st, now, op.Cost, op.Mode)
			s.m.states[strings.Clone(op.Key)] = st
		}
	case "no-clone":
		s.m.apply(now, ops, results)
		for _, op := range ops {
			if st, ok := s.m.states[op.Key]; ok {
				delete(s.m.states, op.Key)
				s.m.states[op.Key] = st // keeps the caller's bytes
			}
		}
	case "early-expiry":
		s.m.apply(now, ops, results)
		for i, op := range ops {
			if results[i].ResetAfter == 1 || (results[i].Allowed && results[i].ResetAfter > 0 && results[i].ResetAfter < 1000) {
				delete(s.m.states, op.Key)
			}
		}
	case "always-allow":
		s.m.apply(now, ops, results)
		for i := range results {
			results[i].Allowed, results[i].Reason = true, algorithms.ReasonNone
		}
	case "stale-retry":
		// Reports a RetryAfter one µs short.
		s.m.apply(now, ops, results)
		for i := range results {
			if results[i].RetryAfter > 1 {
				results[i].RetryAfter--
			}
		}
	case "no-lock":
		// Evaluates without a lock: the model's maps race.
		s.m.apply(now, ops, results)
	case "drop-shadow":
		// Treats shadow ops as enforcing.
		plain := make([]store.Op, len(ops))
		copy(plain, ops)
		for i := range plain {
			plain[i].Shadow = false
		}
		s.m.apply(now, plain, results)
	default:
		s.m.apply(now, ops, results)
	}
	return nil
}

func (s *lockedModel) Reset(_ context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if s.bug == "no-reset" {
		return nil
	}
	for _, k := range keys {
		delete(s.m.states, k)
	}
	return nil
}

func (s *lockedModel) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.bug != "reclose" {
		return store.ErrClosed
	}
	s.closed = true
	return nil
}

func TestRunOnReferenceModel(t *testing.T) {
	Run(t, func(t *testing.T) store.Store { return &lockedModel{m: newModel()} })
}

// TestBrokenStore runs the suite on a store with the bug named by
// $STORETEST_BUG; TestSuiteRejectsBrokenStores expects it to fail.
func TestBrokenStore(t *testing.T) {
	bug := os.Getenv("STORETEST_BUG")
	if bug == "" {
		t.Skip("run by TestSuiteRejectsBrokenStores")
	}
	Run(t, func(t *testing.T) store.Store { return &lockedModel{m: newModel(), bug: bug} })
}

func TestSuiteRejectsBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a test binary per bug")
	}
	bugs := []string{"always-allow", "stale-retry", "commit-denied", "no-clone", "early-expiry", "drop-shadow", "no-validation", "no-reset", "reclose"}
	for _, bug := range bugs {
		t.Run(bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$")
			cmd.Env = append(os.Environ(), "STORETEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %q:\n%s", bug, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenStore/") {
				t.Fatalf("bug %q: the test binary failed without a suite failure:\n%s", bug, out)
			}
		})
	}
}
