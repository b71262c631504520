// Package grpclimit is tollgate's gRPC adapter: unary and stream
// interceptors, for servers and for clients, that check every call with a
// limiter.Limiter, and an adapter to the Limiter interface of
// github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit.
//
//	l, _ := limiter.New(memory.New(), rules)
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(grpclimit.UnaryServerInterceptor(l, grpclimit.WithIdentity(whoIs))),
//		grpc.ChainStreamInterceptor(grpclimit.StreamServerInterceptor(l, grpclimit.WithIdentity(whoIs))),
//	)
//
// # Dimensions
//
// The route dimension (and Facts.Method) is the full method name,
// "/package.Service/Method". The API key is the token of an
// "authorization: Bearer" metadata entry, else of "x-api-key". User,
// tenant, claims and custom dimensions come from WithIdentity, which sees
// the metadata (incoming on a server, outgoing on a client). On a server
// the client IP is the peer's address. The metadata is passed to rule
// predicates as limiter.Request.Header.
//
// # Denials
//
// A denied call never reaches the handler. The server ends it
// trailers-only (the interceptor returns before anything is sent), with:
//
//   - status RESOURCE_EXHAUSTED, a message naming the rule, and the details
//     google.rpc.QuotaFailure (subject "rule:<name>") and
//     google.rpc.RetryInfo (the time until the call would fit);
//   - the trailer grpc-retry-pushback-ms with that time in milliseconds,
//     rounded up, so that a client whose service config has a retry policy
//     for RESOURCE_EXHAUSTED waits exactly that long before retrying
//     (grpc-go honours pushback only on trailers-only responses, which is
//     why nothing may be sent first);
//   - for a call larger than a rule's capacity, which can never pass, no
//     RetryInfo and a pushback of -1, which tells the client not to retry.
//
// A rule failing closed while the store cannot decide gives UNAVAILABLE
// with RetryInfo and a pushback of 1s (WithUnavailableRetry). A guard
// rule's rejection gives the status of its error when the error has a
// GRPCStatus method, else INVALID_ARGUMENT.
//
// Client interceptors check a call before it is sent and fail it locally
// with the same status; nothing reaches the server. WithWait makes them
// wait for capacity instead, within the call's deadline.
//
// A stream is checked once, when it opens. A reservation (concurrency
// rules) is settled when a server handler returns, and when a client
// stream has been created.
//
// # Adapter
//
// NewRateLimiter returns a value that satisfies the ratelimit.Limiter
// interface of go-grpc-middleware. Those interceptors pass only the
// context, so the adapter takes the method from grpc.Method(ctx), and they
// replace the error with their own RESOURCE_EXHAUSTED status without
// RetryInfo or pushback; this package's interceptors are the better
// choice where a host can use them.
//
// The interceptors and the adapter are safe for concurrent use.
package grpclimit
