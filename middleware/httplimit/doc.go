// Package httplimit is tollgate's net/http middleware: it extracts a
// request's dimensions, checks them with a limiter.Limiter, writes the
// rate-limit headers, answers denials, and, in LLM mode, reserves an
// estimate of a model call's tokens and settles it with the usage the
// response reports as it streams past.
//
// Like net/http's CrossOriginProtection it has a pure Check and a Handler
// built on it, with a replaceable deny handler; the incoming request is
// never modified (the handler passes next a shallow copy when it had to
// read the body).
//
//	l, _ := limiter.New(memory.New(), rules)
//	m := httplimit.New(l,
//		httplimit.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")),
//		httplimit.WithIdentity(func(r *http.Request) httplimit.Identity {
//			return httplimit.Identity{User: userOf(r)}
//		}),
//		httplimit.WithOpenAIHeaders(),
//		httplimit.WithLLM(),
//	)
//	http.ListenAndServe(addr, m.Handler(proxy))
//
// # Dimensions
//
//   - api_key: the token of "Authorization: Bearer", else x-api-key,
//     api-key or x-goog-api-key. The limiter hashes it before it becomes
//     part of a counter key; it is never logged.
//   - user, tenant (and claims and custom dimensions): from WithIdentity.
//   - client_ip: the peer address; X-Forwarded-For and Forwarded are
//     believed only when the peer is in a WithTrustedProxies prefix, and
//     then the client is the right-most hop that is not trusted (Forwarded
//     wins when both are present; a hop that is not an address, such as
//     "unknown", ends the walk).
//   - model: the top-level "model" member of a JSON body, else the model a
//     Gemini-style path names (/v1beta/models/{model}:generateContent).
//   - tool: params.name of an MCP JSON-RPC "tools/call" body.
//   - route: r.Pattern, or WithRoute.
//
// The body is read only for JSON (or untyped) bodies of methods that carry
// one, at most WithBodyPeek bytes (64 KiB) or, in LLM mode, WithBodyLimit
// bytes (1 MiB); next receives the same bytes, unbuffered past the limit.
//
// # Headers
//
// Every checked response on which a rule matched carries the fields of
// draft-ietf-httpapi-ratelimit-headers (revisions 09 to 11), as RFC 9651
// structured fields:
//
//	RateLimit-Policy: "per-key";q=100;w=60, "tpm";q=10000;qu="tokens";w=60
//	RateLimit: "per-key";r=42;t=17
//
// RateLimit-Policy lists every enforced rule that matched (q is the
// rule's limit per w, the window or refill period in seconds rounded up,
// omitted for calendar months and concurrency; a bucket whose burst
// differs from its limit adds tollgate-burst; qu is omitted for request rules and
// is "tokens", "input-tokens", "output-tokens", "cost-micros" or
// "concurrent-requests" otherwise). RateLimit names the tightest rule only,
// as the draft asks: r is what it has left, t the seconds until it is full
// again, or on a denial the Retry-After. A denial adds
//
//	Retry-After: 17
//
// in delta-seconds, rounded up, at least 1, except for a request that can
// never pass (larger than the rule's capacity), which gets no Retry-After.
// WithOpenAIHeaders adds what OpenAI-compatible SDKs read to back off:
//
//	x-ratelimit-limit-requests: 100
//	x-ratelimit-remaining-requests: 42
//	x-ratelimit-reset-requests: 17s
//	x-ratelimit-limit-tokens / -remaining-tokens / -reset-tokens
//	retry-after-ms: 16250          (on a denial)
//	x-should-retry: false          (on a denial that can never pass)
//
// # Rejections
//
// A denied request never reaches next. The deny handler (WithDenyHandler;
// default WriteRejection) answers: the denying rule's limiter.Rejection
// (status, headers, body) when it has one, else 429 with an
// application/problem+json body naming the rule. A rule failing closed
// while the store cannot decide gives 503 with Retry-After: 1. A guard
// rule (model lists, per-request caps) without a Rejection of its own gives
// 400, or the status of an error implementing StatusCoder, with the
// error's text as detail.
// Every rejection is logged at Info with the user, tenant, rule and reason.
//
// # LLM mode
//
// Outside LLM mode a request's estimate is zero: token and cost rules
// charge nothing, and a reservation (concurrency rules) is settled when
// next returns. WithLLM makes the middleware account for model calls:
//
//   - Estimate: the body is read up to the body limit and estimated by
//     package tokens (input tokens plus 4 per message; output: the request's
//     max_tokens-style cap plus any thinking budget, else
//     WithDefaultMaxOutput). A longer body is estimated from its length;
//     a body that is not JSON (an audio upload, say) reserves only the
//     output.
//     WithPriceTable (or WithCost) prices it for Cost rules, as it prices
//     the measured usage at settle time. The estimate is what token and
//     cost rules reserve at check time.
//   - Stream: the ResponseWriter is wrapped so that every byte goes to the
//     client as it is written, through a tokens.Meter; Flush passes
//     through, http.ResponseController reaches the underlying writer
//     through Unwrap, and nothing is buffered.
//   - Settle: after next returns, and after the response is flushed to the
//     client, the reservation is settled by the rules below.
//   - Usage injection (optional), described below.
//
// The charging rules, by the upstream's response:
//
//   - 2xx or 3xx with usage in the body: the measured usage is charged
//     (Settled). Delayed output-token rules are charged even past their
//     limit, so the response that crosses a quota completes and the next
//     request is refused before it reaches next.
//   - 2xx or 3xx without usage: the estimate is charged (UsageMissing);
//     for example an OpenAI stream without stream_options.include_usage,
//     or a stream cut before its usage event. A body of unknown length
//     (chunked) longer than WithBodyLimit was estimated from its prefix:
//     its input is then charged at least what the length the upstream
//     read says (tokens.EstimateFromLength).
//   - The client went away (its context ended, or a write failed): the
//     measured usage if the stream still carried it, else the estimate
//     (Disconnected). The upstream usually stops generating when the proxy
//     stops reading, so the estimate, which includes the output cap, is an
//     upper bound.
//   - 429 or 5xx, a 4xx without usage, or no response at all: the
//     reservation is given back (Cancelled); request counts stay charged.
//
// Every settlement is logged (outcome, user, model, input and output
// tokens, reserved tokens, and the increment over the reservation) and
// passed to WithChargeHook, which is where "usage missing" is counted.
//
// WithUsageInjection adds stream_options.include_usage to OpenAI chat
// completion requests that stream without it, and removes the extra usage
// chunk from the response before the client sees it. To do so it holds
// back the bytes of the current, incomplete SSE event (never more than one
// event).
//
// Limitations: a gzip response is metered once it is complete (the
// compressed bytes are kept, up to tokens.DefaultMaxGzipBytes); other
// content encodings (br, zstd) report no usage and are charged the
// estimate. Usage injection leaves the "usage":null member of every other
// chunk in place (SDKs ignore it), works only on uncompressed
// text/event-stream 200 responses, and its rewritten request body is no
// longer byte-identical. A stream that fails mid-way after reporting usage
// is charged its last report. Settlement happens after next returns, on
// the request's goroutine, with the request's context values but not its
// cancellation.
//
// # Downshift
//
// A limiter with limiter.WithDownshift may admit a request that a budget
// denies as a cheaper rewrite of it (Decision.Downshifted, typically the
// same request on a cheaper model). The limiter then reserves, and
// Handler settles, the rewrite's model and estimate; so Handler forwards a
// copy of the request that asks for the rewrite's model:
//
//   - a JSON body's top-level "model" members (the key matched as
//     encoding/json matches it) get the new model; every other byte is
//     forwarded as it came, and ContentLength, a Content-Length header and
//     GetBody follow the new length. A body longer than the body limit is
//     rewritten when the member lies in the part read, the rest streamed
//     on untouched.
//   - a Gemini-style path (/v1beta/models/{model}:generateContent) that
//     names the requested model gets the new one in its URL (Path,
//     RawPath and RequestURI).
//   - WithDownshiftRewrite replaces both for other request shapes (a
//     deployment in the path, a model in a header).
//
// The response carries X-Tollgate-Downshifted: gpt-4o -> gpt-4o-mini, and
// the downshift is logged at Info; WithChargeHook's Charge names the
// served model in Model and the requested one in DownshiftedFrom.
//
// A request that cannot be rewritten (its model is nowhere the rewrite can
// reach, or WithDownshiftRewrite returns an error) never reaches next:
// forwarding it would serve the expensive model on the cheap model's
// charge. Its reservation is cancelled (request counts stay charged), the
// failure is logged at Warn, and the deny handler answers with
// Decision.Limiting.Err a *DownshiftError; WriteRejection writes 503 and a
// problem+json body naming the model the budget admits, without
// rate-limit headers. It is 503, not the budget's 429, because the
// failure is the gateway's configuration, not the client's spending, and
// because the limiter no longer holds the original denial whose
// Retry-After a 429 would need.
//
// Limitation: next's r.PathValue still reports the wildcards ServeMux
// matched on the original path.
//
// A Middleware is safe for concurrent use.
package httplimit
