package limiter

import (
	"context"

	"github.com/tollgate-go/tollgate/tokens"
)

// A budget is a rule with Unit Cost, usually over a calendar window (Day,
// Week, Month): it counts money in micro-units, charges the request's
// Estimate.Cost at check time and the settled Usage.Cost afterwards, and
// denies, like any rule, once the budget is spent. Its thresholds (0.8
// and 1.0 by default) report 80% and 100% through WithThresholdHook;
// WithDownshift lets a request the budget denies continue with a cheaper
// rewrite of it.

// Priced returns u with Cost set to the price, in micro-units of t's
// currency, of its input and output tokens on model. It returns
// tokens.ErrUnknownModel (wrapped) for a model t does not list: an unknown
// model is never priced 0.
func (u Usage) Priced(t *tokens.PriceTable, model string) (Usage, error) {
	c, err := t.Cost(model, tokens.Usage{Input: u.InputTokens, Output: u.OutputTokens, Total: u.InputTokens + u.OutputTokens})
	if err != nil {
		return u, err
	}
	u.Cost = c
	return u, nil
}

// PriceFunc returns a function that prices usage on a model with t, in
// micro-units, the shape httplimit.WithCost takes. A model t does not
// list is priced at unknown (pass the most expensive price to keep
// budgets safe). The function is safe for concurrent use.
func PriceFunc(t *tokens.PriceTable, unknown tokens.Price) func(model string, u Usage) int64 {
	return func(model string, u Usage) int64 {
		tu := tokens.Usage{Input: u.InputTokens, Output: u.OutputTokens, Total: u.InputTokens + u.OutputTokens}
		_, p, err := t.Lookup(model)
		if err != nil {
			p = unknown
		}
		return p.Cost(tu)
	}
}

// WithDownshift sets a function called when a budget (an enforcing rule
// with Unit Cost) denies a check. It may return a rewritten copy of the
// request, for example for a cheaper model with its Estimate priced again,
// or nil to keep the denial. The copy is checked once in place of the
// request: if it is allowed, Check returns its Decision, with Downshifted
// set to the copy, and the caller must forward that copy (its Model)
// instead of the original; if it is denied too, Check returns the original
// denial. f must not modify req. It is called on the check's goroutine,
// with the denied Decision.
func WithDownshift(f func(ctx context.Context, req *Request, denied Decision) *Request) Option {
	return func(c *config) { c.downshift = f }
}

// downshift offers a request a budget denied to the downshift hook, and
// checks its rewrite once.
func (l *Limiter) downshift(ctx context.Context, req *Request, d *Decision) {
	if !budgetDenied(d) {
		return
	}
	alt := l.cfg.downshift(ctx, req, *d)
	if alt == nil || alt == req {
		return
	}
	var again Decision
	l.decide(ctx, alt, &again, false)
	if !again.Allowed {
		return
	}
	again.Downshifted = alt
	*d = again
}

// budgetDenied reports whether an enforcing Cost rule counted the request
// over its limit (not a store failure, not a guard).
func budgetDenied(d *Decision) bool {
	for i := range d.Len() {
		r := d.resultPtr(i)
		if !r.Allowed && r.Rule != nil && r.Rule.Unit == Cost && r.Rule.Mode == Enforce &&
			r.Rule.Guard == nil && !r.StoreError && r.Err == nil {
			return true
		}
	}
	return false
}
