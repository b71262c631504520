package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/tokens"
)

// priceWith returns the cost function of the budgets: the price, in
// micro-USD, of usage on a model, with the prices of the policy in force
// (they change with it). A model without a price never gets this far: the
// policy's priced-models guard refuses it.
func priceWith(r *policy.Reloader) httplimit.CostFunc {
	return func(model string, u limiter.Usage) int64 {
		c, err := r.Policy().Prices().Cost(model, tokens.Usage{
			Input: u.InputTokens, Output: u.OutputTokens, Total: u.InputTokens + u.OutputTokens})
		if err != nil {
			return 0
		}
		return c
	}
}

// ledger adds up what each user was charged, from the middleware's charge
// hook, which runs after every settlement. It is a stand-in for a usage
// ledger with export and retention; it only keeps totals.
type ledger struct {
	mu     sync.Mutex
	total  usageTotals
	byUser map[string]*usageTotals
}

// usageTotals is what a set of requests was charged.
type usageTotals struct {
	Requests     int64 `json:"requests"`
	Measured     int64 `json:"measured"` // settled with the usage the provider reported
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	CostMicroUSD int64 `json:"cost_micro_usd"`
}

func (t *usageTotals) add(c httplimit.Charge) {
	t.Requests++
	if c.Measured {
		t.Measured++
	}
	t.InputTokens += c.Charged.InputTokens
	t.OutputTokens += c.Charged.OutputTokens
	t.CostMicroUSD += c.Charged.Cost
}

// record is the middleware's charge hook.
func (l *ledger) record(_ context.Context, r *http.Request, c httplimit.Charge) {
	user := identity(r).User
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser == nil {
		l.byUser = make(map[string]*usageTotals)
	}
	u := l.byUser[user]
	if u == nil {
		u = new(usageTotals)
		l.byUser[user] = u
	}
	u.add(c)
	l.total.add(c)
}

// snapshot returns the totals, overall and by user.
func (l *ledger) snapshot() (total usageTotals, byUser map[string]usageTotals) {
	l.mu.Lock()
	defer l.mu.Unlock()
	byUser = make(map[string]usageTotals, len(l.byUser))
	for k, v := range l.byUser {
		byUser[k] = *v
	}
	return l.total, byUser
}
