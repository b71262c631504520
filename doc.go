// Package tollgate is a rate limiter that API, LLM and MCP gateways embed to
// enforce request, token and cost limits in-process.
//
// The work is done by its sub-packages:
//
//   - limiter: the engine. Rules, one store call per decision, all or
//     nothing; reservations settled to measured usage; fail modes.
//   - algorithms: fixed window, sliding window, token bucket, GCRA and
//     concurrency, as pure integer state transitions.
//   - dimensions: the facts of a request and collision-free counter keys.
//   - store, store/memory, store/redis: where counters live.
//   - tokens: LLM usage extraction from streaming responses, input-token
//     estimation, MCP / A2A sizing, prices.
//   - policy: YAML / JSON policy files with a JSON Schema, CEL predicates
//     and hot reload.
//   - middleware/httplimit, middleware/grpclimit: the adapters.
//
// This package itself holds no code; it documents the module and checks
// its dependency rules in a test.
package tollgate
