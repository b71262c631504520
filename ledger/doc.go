// Package ledger keeps usage accounts in the limiter's store: per subject
// (an API key, an application, a team, a model, or any group of
// dimensions) and per period (a day by default), the requests admitted
// and denied, the input and output tokens, and the cost.
//
// A Ledger is a limiter.Recorder. The limiter adds its ops to the store
// calls it makes anyway, so keeping accounts costs no extra round trip:
//
//   - at check time, one op per subject counts the request; it rides in
//     the check's batch as a shadow op, so it counts only when the request
//     is admitted;
//   - a denied request is counted with one more store call, on the deny
//     path only;
//   - at settle time, up to three ops per subject add the tokens and the
//     cost in the settle's batch. A request that matched no rule is counted
//     then too (the limiter gives every allowed request a Reservation when
//     a recorder is set).
//
// Every counter is a fixed window that never denies (limit
// algorithms.MaxLimit, Force mode) keyed by period, so the totals are exact
// sums: a query reads them back with peeks (Usage), and Export streams a
// whole period as CSV or JSON.
//
// # What is exact and what can be lost
//
// Counts are exact for every check and settlement the store applied. Lost:
// the request count of a check whose store call failed and that is never
// settled; a denial when the store failed (it is not retried); usage
// settled after the period's counters expired (WithRetention); counters a
// bounded memory store evicted under pressure. Wait counts each denied
// attempt as a denial, and a request the limiter downshifts to another
// model counts as a denial of the first and a request of the second.
// Counters saturate at 2^53.
//
// # Keys in the store
//
// A subject holds up to five keys per period (requests, denials, input
// tokens, output tokens, cost; a zero counter holds none), each living
// from a few minutes before its period until the retention ends
// (WithRetention, 8 periods by default). With the memory store, whose cap
// on keys (memory.WithMaxKeys) rule counters share, count them in: 10,000
// API keys kept 8 days is up to 400,000 keys for the api_key group alone.
// The keys are "ledger/<period s>.<retention s>/<period start s>/<metric>"
// followed by the dimensions as in rule keys (API keys hashed). On a Redis
// Cluster they fall in other slots than the rule counters of the same
// request, so a check spans slots (see store/redis on what that
// guarantees) unless a hash tag (redis.WithHashTag) puts them together.
//
// # Listing subjects
//
// The store contract cannot list keys, so the ledger keeps a bounded index
// of the subjects it has seen per period, in memory (WithIndexLimit), and
// Export lists those. With a store shared by several gateway instances,
// each instance's index holds the subjects it saw; the totals read are the
// store's, summed over all instances. ExportSubjects exports subjects the
// caller lists (for example every API key it issued), indexed or not.
//
// # Usage
//
//	s := memory.New()
//	lg, err := ledger.New(s)                     // per key, app, team, model; per day
//	l, err := limiter.New(s, rules, limiter.WithRecorder(lg))
//	...
//	u, err := lg.Usage(ctx, time.Now(), ledger.Subject{
//		Group: ledger.Group{dimensions.Tenant},
//		Facts: dimensions.Facts{Tenant: "acme"},
//	})
//	err = lg.Export(ctx, w, ledger.CSV, time.Now())
//
// The application dimension is the custom attribute "app" (App), set in
// dimensions.Facts.Custom.
package ledger
