package main

import (
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/tokens"
)

// team is the custom attribute policy.yaml declares.
const team dimensions.Dimension = "team"

// usageGroups are what the ledger adds usage up by, per day.
var usageGroups = []ledger.Group{
	{dimensions.User}, {dimensions.Tenant}, {team}, {dimensions.APIKey}, {dimensions.Model},
}

// newLedger returns the usage ledger: per user, tenant, team, API key and
// model, per UTC day, the requests admitted and denied, the tokens and the
// cost. Its counters live in the limiter's store and ride in the store
// calls the limiter makes anyway.
func newLedger(s store.Store) (*ledger.Ledger, error) {
	return ledger.New(s, ledger.WithGroups(usageGroups...))
}

// priceWith returns the cost function of the budgets: the price, in
// micro-USD, of usage on a model (cached input at its own price), with the
// prices of the policy in force, which change with it
// (httplimit.WithPriceTable takes a fixed table). A model without a price never gets this far: the
// policy's priced-models guard refuses it.
func priceWith(r *policy.Reloader) httplimit.CostFunc {
	return func(model string, u tokens.Usage) int64 {
		c, err := r.Policy().Prices().Cost(model, u)
		if err != nil {
			return 0
		}
		return c
	}
}
