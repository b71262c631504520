package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/tollgate-go/tollgate/algorithms"
)

// Errors shared by all stores. Implementations wrap them, so callers match
// them with errors.Is.
var (
	// ErrClosed is returned by calls on a store after Close.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidOp is returned, before anything is charged, for a batch with
	// an empty key, invalid parameters, or fewer results than ops.
	ErrInvalidOp = errors.New("store: invalid op")
	// ErrFull is returned by a bounded store that has no room for a new key
	// and may not evict one (every candidate is currently denying).
	ErrFull = errors.New("store: full")
	// ErrPartial marks the error of a store spanning several nodes (a
	// Redis Cluster) when the nodes holding the batch's keys failed while
	// other nodes still answer: the store as a whole is up. The limiter's
	// circuit breaker does not count such errors, so one dead node does not
	// cut off the keys of the healthy ones; the store fails fast on the
	// dead node itself.
	ErrPartial = errors.New("store: part of the store is unavailable")
)

// MaxKeyLen is the longest key, in bytes, that every store accepts.
const MaxKeyLen = 1024

// Op is one operation of a batch: cost units against the limit Params on
// the counter named Key.
type Op struct {
	// Key names the counter. Keys are opaque to the store; the limiter
	// builds them from the rule and the request's dimensions. Two ops with
	// different Params must not share a key. A store must not retain Key
	// after Apply returns (the limiter may build it in a reused buffer):
	// it copies the string if it keeps it.
	Key string
	// Params are the algorithm and its parameters.
	Params algorithms.Params
	// Cost is the number of units: positive consumes, 0 peeks, negative
	// refunds (see package algorithms).
	Cost int64
	// Mode is algorithms.Force to charge past the limit (settling delayed
	// quotas); the zero Mode is algorithms.Normal.
	Mode algorithms.Mode
	// Shadow marks an op whose denial does not deny the batch. A shadow op
	// is charged, when the batch commits, only if it was itself allowed.
	Shadow bool
}

// Store applies batches of ops. Implementations are safe for concurrent use.
type Store interface {
	// Apply evaluates ops as one all-or-nothing batch at time now
	// (microseconds since the Unix epoch; a store with its own clock, such
	// as Redis TIME, may use that instead) and writes one result per op
	// into results, which must be at least len(ops) long.
	//
	// In a denied batch, an op that fit reports Allowed with the Remaining
	// it would have had; nothing was charged. Apply returns an error only
	// when it could not decide; then nothing was charged (for a store that
	// spans several nodes, see its documentation for what it guarantees).
	Apply(ctx context.Context, now int64, ops []Op, results []algorithms.Result) error
	// Reset forgets the state of the given keys, as if they had never been
	// used. Keys that do not exist are ignored.
	Reset(ctx context.Context, keys ...string) error
	// Close releases what the store holds. Calls after Close return
	// ErrClosed. Close does not close a client the caller passed in.
	Close() error
}

// Validate checks a batch before any of it is applied: every key non-empty
// and at most MaxKeyLen bytes, every Params valid, and room for the results.
// Stores call it first, so every implementation rejects the same batches.
func Validate(ops []Op, results []algorithms.Result) error {
	if len(results) < len(ops) {
		return fmt.Errorf("%w: %d results for %d ops", ErrInvalidOp, len(results), len(ops))
	}
	for i := range ops {
		op := &ops[i]
		if op.Key == "" || len(op.Key) > MaxKeyLen {
			return fmt.Errorf("%w: op %d: key length %d not in [1, %d]", ErrInvalidOp, i, len(op.Key), MaxKeyLen)
		}
		if op.Params.Valid() {
			continue
		}
		if err := op.Params.Validate(); err != nil {
			return fmt.Errorf("%w: op %d (%q): %w", ErrInvalidOp, i, op.Key, err)
		}
	}
	return nil
}

// Admitted reports whether a batch whose results are given committed: every
// op that is not Shadow is allowed.
func Admitted(ops []Op, results []algorithms.Result) bool {
	for i := range ops {
		if !ops[i].Shadow && !results[i].Allowed {
			return false
		}
	}
	return true
}
