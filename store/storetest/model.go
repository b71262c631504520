package storetest

import (
	"strings"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// model is the reference store: a map of states, with the batch semantics
// of package store, running algorithms.Apply directly. It never expires a
// key: a state past its ResetAfter must behave exactly like a fresh one.
type model struct {
	states map[string]algorithms.State
}

func newModel() *model { return &model{states: make(map[string]algorithms.State)} }

func (m *model) apply(now int64, ops []store.Op, results []algorithms.Result) {
	pending := make(map[string]algorithms.State, len(ops))
	for i, op := range ops {
		s, ok := pending[op.Key]
		if !ok {
			s = m.states[op.Key]
		}
		// A denied op returns s unchanged, so the pending state holds
		// exactly the charges of the allowed ops.
		pending[op.Key], results[i] = algorithms.Apply(op.Params, s, now, op.Cost, op.Mode)
	}
	if !store.Admitted(ops, results) {
		return
	}
	for k, s := range pending {
		if s == (algorithms.State{}) {
			delete(m.states, k)
		} else {
			m.states[strings.Clone(k)] = s // keys may be borrowed
		}
	}
}
