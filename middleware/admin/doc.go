// Package admin is tollgate's runtime management API, an http.Handler:
// read and replace the rules, switch a rule between enforce, shadow and
// off, inspect and reset the counters of a key, query and export usage
// from a ledger, and report health. Every answer is JSON; every error is
// application/problem+json (RFC 9457).
//
// There is no open admin API: New requires an Authorizer, and every
// request, unknown routes included, is authorized before anything else.
// BearerToken is a ready-made one.
//
// # Routes
//
//	GET    /rules                 the rules in force
//	GET    /rules/{name}          one rule
//	PUT    /rules                 replace the rules with a policy document (YAML or JSON);
//	                              ?dry_run=true only validates. A refused document keeps the
//	                              old rules: 422 with every error and its JSON path.
//	PUT    /rules/{name}/mode     {"mode": "enforce" | "shadow" | "off"}
//	GET    /keys?user=alice&...   what a request with these dimensions would get now (Peek)
//	DELETE /keys?user=alice&...   reset the counters of every matching rule for them
//	GET    /usage?api_key=...     usage of one subject; &period=current|previous|2026-11-22;
//	                              &group=tenant+model when the dimensions are ambiguous
//	GET    /usage/export          every indexed subject of a period, streamed;
//	                              ?format=csv|json&period=...
//	GET    /health                store reachable, circuit breaker state (503 when not ok)
//
// Dimensions in a query are the predefined ones by name (user, tenant,
// api_key, model, tool, route, client_ip), method, and any other name as a
// custom attribute (app=chat). group, period, format and dry_run are not
// dimensions.
//
// In /keys, parameters "header.<Name>" and "claim.<name>" give the
// headers and identity claims (as strings) that rules' when predicates
// see: ?user=alice&header.X-Tier=pro&claim.plan=gold. Without them,
// predicates see none, and rules that need them do not match.
//
// A mode set through the API lasts until the next document replaces the
// rules.
//
// # Usage
//
//	lg, _ := ledger.New(st)
//	lim, _ := limiter.New(st, rules, limiter.WithRecorder(lg))
//	h, err := admin.New(lim, admin.BearerToken(os.Getenv("ADMIN_TOKEN")),
//		admin.WithLedger(lg), admin.WithReloader(reloader))
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
package admin
