package limiter

import (
	"context"
	"log/slog"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// Recording is what a Recorder keeps of one request between its check and
// its settlement. Its content is the Recorder's; the limiter only hands it
// back.
type Recording any

// Recorder keeps accounts of requests (a usage ledger) in the limiter's
// store, through ops the limiter adds to the store calls it makes anyway:
//
//   - a checked request that reaches the store: the ops of AppendRequest
//     ride in the check's batch as shadow ops, so they are charged only
//     when the request is admitted;
//   - a denied request: the ops of AppendDenial are applied in one more
//     store call, on the deny path only (not when the store failed);
//   - a settled or cancelled reservation: the ops of AppendUsage (and of
//     AppendRequest, when the check did not charge them) ride in the
//     settle's batch.
//
// With a Recorder every allowed Decision carries a Reservation, so that a
// request that matched no rule, or only guards, is counted when it is
// settled or cancelled, in that one store call. Ops must be Force-mode
// (they never deny) and their keys must not collide with rule counters.
// Package ledger implements Recorder. Implementations are safe for
// concurrent use.
type Recorder interface {
	// Record is called once per Check (never by Peek), at now (µs since the
	// epoch), and returns the recording the other methods are given. It
	// must not retain req, which the caller may reuse.
	Record(req *Request, now int64) Recording
	// AppendRequest appends the ops that count rec as an admitted request.
	AppendRequest(ops []store.Op, rec Recording) []store.Op
	// AppendDenial appends the ops that count rec as a denied request.
	AppendDenial(ops []store.Op, rec Recording) []store.Op
	// AppendUsage appends the ops that add the usage measured at
	// settlement to rec's accounts.
	AppendUsage(ops []store.Op, rec Recording, actual Usage) []store.Op
}

// WithRecorder sets a Recorder that keeps per-request accounts in the
// limiter's store. The default records nothing. With a Recorder a check
// allocates the recording and, when allowed, a Reservation.
func WithRecorder(r Recorder) Option {
	return func(c *config) { c.recorder = r }
}

// recordCheck, for a check that calls the store, records req and appends
// its request ops to sc.ops as shadow ops. It returns nil without a
// recorder or for a peek.
func (l *Limiter) recordCheck(sc *scratch, req *Request, now int64, peek bool) Recording {
	if l.cfg.recorder == nil || peek {
		return nil
	}
	rec := l.cfg.recorder.Record(req, now)
	n := len(sc.ops)
	sc.ops = l.cfg.recorder.AppendRequest(sc.ops, rec)
	for k := n; k < len(sc.ops); k++ {
		sc.ops[k].Shadow = true
	}
	return rec
}

// recordAside records a check that decided without the store (no rule, or
// only guards, matched).
func (l *Limiter) recordAside(ctx context.Context, req *Request, d *Decision, peek bool) {
	if l.cfg.recorder == nil || peek {
		return
	}
	rec := l.cfg.recorder.Record(req, l.now())
	l.recordOutcome(ctx, d, rec, false)
}

// recordOutcome attaches rec to an allowed decision's reservation (making
// one), marking whether its request ops still have to be charged, or
// writes the denial of a denied one.
func (l *Limiter) recordOutcome(ctx context.Context, d *Decision, rec Recording, charged bool) {
	if rec == nil {
		return
	}
	if d.Allowed {
		if d.Reservation == nil {
			d.Reservation = &Reservation{l: l}
		}
		d.Reservation.rec = rec
		d.Reservation.recPending = !charged || d.Err != nil
		return
	}
	if d.Err != nil {
		return // the store is failing: do not add a call to it
	}
	ops := l.cfg.recorder.AppendDenial(nil, rec)
	if len(ops) == 0 {
		return
	}
	results := make([]algorithms.Result, len(ops))
	if err := l.apply(ctx, l.store, l.now(), ops, results, true); err != nil {
		l.cfg.logger.Warn("tollgate: recording a denial failed", slog.Any("error", err))
	}
}

// appendRecorded appends the recorder's ops for a reservation being
// finished: the request when the check did not charge it, and the usage
// when settled (actual non-nil).
func (r *Reservation) appendRecorded(ops []store.Op, actual *Usage) []store.Op {
	if r.rec == nil {
		return ops
	}
	rc := r.l.cfg.recorder
	if r.recPending {
		ops = rc.AppendRequest(ops, r.rec)
	}
	if actual != nil {
		ops = rc.AppendUsage(ops, r.rec, *actual)
	}
	return ops
}
