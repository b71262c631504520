// Package dimensions holds the facts about a request that limits are keyed
// by (user, tenant, API key, model, tool, route, client IP, and custom
// attributes) and the canonical encoding of a counter key from them.
//
// The encoding is collision-free: tenant "a:b" with user "c" and tenant "a"
// with user "b:c" give different keys, whatever the values contain. Values
// that are unsafe to store raw (CR, LF, NUL, invalid UTF-8, or longer than
// [MaxRawLen] bytes) are replaced by a hash, and API keys are always hashed,
// so a secret never appears in a store.
//
//	f := dimensions.Facts{Tenant: "acme", User: "alice"}
//	key := dimensions.AppendKey(nil, "per-user", []dimensions.Dimension{dimensions.Tenant, dimensions.User}, &f)
//	// per-user|tenant=acme|user=alice
package dimensions
