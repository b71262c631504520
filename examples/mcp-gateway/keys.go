package main

import (
	"context"
	"net/http"
	"strings"
)

// caller is what the gateway's authentication knows about an API key.
type caller struct{ User, Tenant string }

// demoKeys are the gateway's API keys; a real gateway has a database, or
// takes the user and tenant from an OAuth token's claims.
var demoKeys = map[string]caller{
	"sk-mcp-alice": {User: "alice", Tenant: "acme"},
	"sk-mcp-bob":   {User: "bob", Tenant: "acme"},
	"sk-mcp-erin":  {User: "erin", Tenant: "globex"},
}

type callerKey struct{}

// authenticate admits requests with a known "Authorization: Bearer" key.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c, ok := demoKeys[key]
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeRPCError(w, http.StatusUnauthorized, nil, -32001, "unknown API key", nil)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}
