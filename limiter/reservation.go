package limiter

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// Reservation is what an allowed request holds until it is settled: the
// estimate reserved by token and cost rules, the output quota of delayed
// rules, and the slots of concurrency rules. Settle and Cancel are
// idempotent and safe for concurrent use; only the first call of either
// acts. A reservation never settled (a crash, a lost response) keeps its
// charge, which ages out of the window like any other.
type Reservation struct {
	l       *Limiter
	entries []reserved
	done    atomic.Bool
	// rec is the Recorder's recording of the request; recPending reports
	// that its request ops were not charged at check time.
	rec        Recording
	recPending bool
}

type reserved struct {
	rule        string
	key         string
	params      algorithms.Params
	unit        Unit
	amount      int64 // charged at check time
	delayed     bool
	concurrency bool
	fallback    bool // charged on the fallback store
	cr          *compiledRule
}

// Reserved returns the amount reserved at check time by the rule named
// rule, in its unit, and whether that rule is part of the reservation.
func (r *Reservation) Reserved(rule string) (int64, bool) {
	for i := range r.entries {
		if r.entries[i].rule == rule {
			return r.entries[i].amount, true
		}
	}
	return 0, false
}

// reserve builds the reservation of an allowed decision, or returns nil
// when nothing needs settling.
func (l *Limiter) reserve(set *ruleSet, sc *scratch, results []algorithms.Result, failed []bool) *Reservation {
	var res *Reservation
	for j, i := range sc.matched {
		r := &set.rules[i]
		if !r.settles {
			continue
		}
		charged := results[j].Allowed && (failed == nil || !failed[j])
		if !r.delayed && !charged {
			continue // nothing was charged, so there is nothing to correct
		}
		if res == nil {
			res = &Reservation{l: l, entries: make([]reserved, 0, len(sc.matched)-j)}
		}
		op := &sc.ops[j]
		params, fallback := op.Params, false
		if failed != nil && !failed[j] {
			// Charged on the fallback: settle that counter, with the
			// instance's share it was checked with.
			if k := sc.fbPos(j); k >= 0 {
				params, fallback = sc.fallback[k].Params, true
			}
		}
		res.entries = append(res.entries, reserved{
			rule:        r.Name,
			key:         strings.Clone(op.Key),
			params:      params,
			unit:        r.Unit,
			amount:      op.Cost,
			delayed:     r.delayed,
			concurrency: r.params.Kind == algorithms.Concurrency,
			fallback:    fallback,
			cr:          r,
		})
	}
	return res
}

// fbPos returns the position in sc.fallback of the op at index j of
// sc.ops, or -1 when it was not sent to the fallback.
func (sc *scratch) fbPos(j int) int {
	for k, i := range sc.fbIndex {
		if i == j {
			return k
		}
	}
	return -1
}

// Settle charges the measured usage: token and cost rules are corrected by
// the difference between actual and reserved (a refund when negative, never
// below empty; past the limit when positive), delayed rules are charged the
// actual amount even past their limit (so the next request is refused), and
// concurrency slots are released. It makes one store call per store used.
func (r *Reservation) Settle(ctx context.Context, actual Usage) error {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return nil
	}
	err := r.finish(ctx, &actual, func(e *reserved) int64 {
		switch {
		case e.concurrency:
			return -e.amount
		case e.delayed:
			return actual.amount(e.unit)
		}
		return actual.amount(e.unit) - e.amount
	})
	r.l.cfg.observer.Settled(ctx, r, actual, err)
	if err != nil {
		r.l.cfg.logger.Warn("tollgate: settle failed", slog.Any("error", err))
	} else {
		r.l.cfg.logger.Debug("tollgate: settled",
			slog.Int64("input_tokens", actual.InputTokens),
			slog.Int64("output_tokens", actual.OutputTokens),
			slog.Int64("cost", actual.Cost))
	}
	return err
}

// Cancel gives back what the check reserved, as when the request was never
// served (an upstream error): token and cost reservations are refunded and
// concurrency slots released. Request counts stay charged.
func (r *Reservation) Cancel(ctx context.Context) error {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return nil
	}
	err := r.finish(ctx, nil, func(e *reserved) int64 {
		if e.delayed {
			return 0
		}
		return -e.amount
	})
	r.l.cfg.observer.Settled(ctx, r, Usage{}, err)
	return err
}

// finish charges each entry its cost, and the recorder's ops (the usage
// when actual is non-nil), in one call per store used.
func (r *Reservation) finish(ctx context.Context, actual *Usage, cost func(*reserved) int64) error {
	var main, local []store.Op
	for i := range r.entries {
		e := &r.entries[i]
		c := cost(e)
		if c == 0 {
			continue
		}
		op := store.Op{Key: e.key, Params: e.params, Cost: c}
		if c > 0 {
			op.Mode = algorithms.Force
		}
		if e.fallback {
			local = append(local, op)
		} else {
			main = append(main, op)
		}
	}
	main = r.appendRecorded(main, actual)
	l := r.l
	now := l.now()
	var err error
	if len(main) > 0 {
		results := make([]algorithms.Result, len(main))
		err = l.apply(ctx, l.store, now, main, results, true)
		if err == nil && l.cfg.thresholdHook != nil {
			r.settleThresholds(ctx, l.store, main, results, now)
		}
	}
	if len(local) > 0 {
		results := make([]algorithms.Result, len(local))
		ferr := l.apply(ctx, l.cfg.fallback, now, local, results, false)
		if ferr == nil && l.cfg.thresholdHook != nil {
			r.settleThresholds(ctx, l.cfg.fallback, local, results, now)
		}
		if err == nil {
			err = ferr
		}
	}
	return err
}
