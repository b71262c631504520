package limiter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// refStore is the simplest correct store: one mutex, one map, the batch
// semantics of package store spelled out. It lets the limiter's tests run
// without depending on a store implementation.
type refStore struct {
	mu     sync.Mutex
	states map[string]*algorithms.State // pointers: updates must not store the borrowed key
	calls  atomic.Int64
	fail   atomic.Pointer[error] // when set, Apply returns it
}

func newRefStore() *refStore { return &refStore{states: map[string]*algorithms.State{}} }

func (s *refStore) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	s.calls.Add(1)
	if err := s.fail.Load(); err != nil {
		return *err
	}
	if err := store.Validate(ops, results); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf [8]algorithms.State
	next := buf[:0]
	if len(ops) > len(buf) {
		next = make([]algorithms.State, 0, len(ops))
	}
	next = next[:len(ops)]
	for i, op := range ops {
		var st algorithms.State
		if p := s.states[op.Key]; p != nil {
			st = *p
		}
		for j := i - 1; j >= 0; j-- { // an earlier op of the batch on the same key
			if ops[j].Key == op.Key {
				st = next[j]
				break
			}
		}
		ns, r := algorithms.Apply(op.Params, st, now, op.Cost, op.Mode)
		if !r.Allowed {
			ns = st
		}
		next[i], results[i] = ns, r
	}
	if !store.Admitted(ops, results) {
		return nil
	}
	for i, op := range ops {
		if !results[i].Allowed {
			continue
		}
		if p := s.states[op.Key]; p != nil {
			*p = next[i]
		} else {
			st := next[i]
			s.states[strings.Clone(op.Key)] = &st
		}
	}
	return nil
}

func (s *refStore) Reset(ctx context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.states, k)
	}
	return nil
}

func (s *refStore) Close() error { return nil }

// InProcess tells the limiter that a deadline is pointless here.
func (s *refStore) InProcess() bool { return true }

func (s *refStore) setFailing(err error) {
	if err == nil {
		s.fail.Store(nil)
		return
	}
	s.fail.Store(&err)
}

var errDown = errors.New("store down")

var _ store.Store = (*refStore)(nil)
