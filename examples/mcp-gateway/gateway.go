package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/tokens"
)

const (
	maxRequestBytes = 1 << 20
	maxResultBytes  = 8 << 20
	// resultTokensHeader tells the client what its result was counted as.
	resultTokensHeader = "Tollgate-Result-Tokens"
)

// toolGateway forwards MCP JSON-RPC messages to an MCP server and limits
// tools/call with the limiter directly: httplimit's Handler settles a
// request with its estimate, and here the amount to settle is the size of
// the result, known only once it is back.
type toolGateway struct {
	lim    *limiter.Limiter
	proxy  *httputil.ReverseProxy
	logger *slog.Logger
}

// callKey carries a call's reservation to the proxy's ModifyResponse.
type callKey struct{}

func newToolGateway(lim *limiter.Limiter, upstream *url.URL, logger *slog.Logger) *toolGateway {
	g := &toolGateway{lim: lim, logger: logger}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.URL.Path, pr.Out.URL.RawPath = upstream.Path, upstream.RawPath
			pr.Out.Header.Del("Authorization") // the gateway's keys are not the server's
		},
		ModifyResponse: g.settle,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("upstream", "error", err)
			writeRPCError(w, http.StatusBadGateway, nil, -32603, "the MCP server could not be reached", nil)
		},
	}
	return g
}

func (g *toolGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		g.proxy.ServeHTTP(w, r) // GET (server stream) and DELETE (session end) pass
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil || len(body) > maxRequestBytes {
		writeRPCError(w, http.StatusRequestEntityTooLarge, nil, -32600, "request too large", nil)
		return
	}
	var msg rpcRequest
	if err := json.Unmarshal(body, &msg); err != nil {
		// Batches (arrays) were removed from MCP in 2025-06-18.
		writeRPCError(w, http.StatusBadRequest, nil, -32700, "not a JSON-RPC request object", nil)
		return
	}
	fwd := r.Clone(r.Context())
	fwd.Body, fwd.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if msg.Method != "tools/call" {
		g.proxy.ServeHTTP(w, fwd) // only tool calls are limited
		return
	}

	c := callerOf(r)
	req := &limiter.Request{Facts: dimensions.Facts{
		User: c.User, Tenant: c.Tenant, Tool: msg.Params.Name, Route: msg.Method,
	}}
	d := g.lim.Check(r.Context(), req)
	if !d.Allowed {
		g.refuse(w, msg.ID, req, &d)
		return
	}
	if d.Reservation != nil {
		// Settled with the result's size in settle; given back here if
		// there was no result (only the first of Settle and Cancel acts).
		defer d.Reservation.Cancel(context.WithoutCancel(r.Context()))
		fwd = fwd.WithContext(context.WithValue(fwd.Context(), callKey{}, d.Reservation))
	}
	g.proxy.ServeHTTP(w, fwd)
}

// settle reads a tool call's result, counts its tokens, and settles the
// call's reservation before the result goes to the client, so that the
// client's next call already sees the charge.
func (g *toolGateway) settle(resp *http.Response) error {
	res, ok := resp.Request.Context().Value(callKey{}).(*limiter.Reservation)
	if !ok {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResultBytes))
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))

	// A JSON or SSE (Streamable HTTP) body; errors and notifications count 0.
	n, err := tokens.PayloadTokens(body, nil)
	if err != nil {
		g.logger.Warn("result not sized", "error", err)
	}
	resp.Header.Set(resultTokensHeader, strconv.FormatInt(n, 10))
	ctx := context.WithoutCancel(resp.Request.Context())
	if err := res.Settle(ctx, limiter.Usage{InputTokens: n}); err != nil {
		g.logger.Warn("settle", "error", err)
	}
	return nil
}

// refuse answers a call the limiter denied: 429 (503 when the store could
// not decide) with Retry-After, and a JSON-RPC error with the call's id
// that names the rule.
func (g *toolGateway) refuse(w http.ResponseWriter, id json.RawMessage, req *limiter.Request, d *limiter.Decision) {
	rule := d.Limiting.Rule.Name
	status := httplimit.Status(d)
	data := map[string]any{"rule": rule}
	if d.RetryAfter > 0 {
		secs := httplimit.RetryAfterSeconds(d.RetryAfter)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		data["retry_after_seconds"] = secs
	}
	g.logger.Info("refused", "user", req.User, "tenant", req.Tenant, "tool", req.Tool, "rule", rule)
	writeRPCError(w, status, id, -32000, "rate limited by "+rule, data)
}
