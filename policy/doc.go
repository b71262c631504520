// Package policy loads declarative rate-limit policies, YAML or JSON, and
// compiles them to limiter rules.
//
// A document is validated against an embedded JSON Schema (draft 2020-12,
// [Schema], the file schema/tollgate.schema.json, for editors too), then for
// consistency; every problem is an [*Error] with the JSON pointer of the
// offending value, and Load returns all of them at once:
//
//	policy: /rules/3/limit: "60/hour" is not a rate; did you mean "60/h"?
//
// What a document can say (REFERENCE.md has every field):
//
//   - Rates in one canonical spelling: "50/m", "10000/h", "100/5m" ([Rate]).
//   - Per rule: the dimensions that key counters (by), the unit (requests,
//     tokens, input_tokens, output_tokens, cost), the algorithm and burst,
//     the mode (enforce, shadow, off), the store-error mode, and the
//     rejection (status, body, headers, content type).
//   - Calendar windows (day, week, month) in an IANA time zone, for budgets.
//   - `when` predicates in CEL over request.user, request.tenant,
//     request.api_key, request.model, request.tool, request.route,
//     request.client_ip, request.method, request.headers, declared custom
//     attributes, and auth.identity claims; type-checked at load time. An
//     equality such as request.model == "gpt-4" becomes an indexed
//     limiter.Equal, so a thousand rules cost what one does.
//   - Hierarchy: a rule with parent and share holds a fraction of its
//     parent's quota; one check charges both, atomically.
//   - Defaults and overrides at document and group scope, as in Kuadrant.
//   - Guards: model allow and deny lists and per-request token caps, which
//     reject before any counter changes ([GuardError]).
//   - The compact per-model form
//     {"model": "gpt-4", "rate_limit": {"rpm": 50, "tpm": 10000}}.
//
// A [Reloader] keeps a limiter in step with a document: Apply, ApplyFile,
// or Watch, which polls a file on the caller's goroutine. An invalid
// document never replaces valid rules; counters of unchanged rules survive.
//
// Usage:
//
//	p, err := policy.LoadFile("tollgate.yaml", policy.WithLogger(logger))
//	if err != nil {
//		for _, e := range policy.Errors(err) {
//			fmt.Println(e) // one line per problem
//		}
//		return err
//	}
//	lim, err := limiter.New(store, p.Rules())
//	...
//	r := policy.NewReloader(lim, policy.WithLogger(logger))
//	go r.Watch(ctx, "tollgate.yaml")
//
// The package keeps no global mutable state and starts no goroutine.
// Loading compiles CEL and the schema, which takes milliseconds: load at
// start-up and on reload, not per request.
package policy
