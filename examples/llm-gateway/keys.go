package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/policy"
)

// caller is what the gateway's authentication knows about an API key.
type caller struct {
	User, Tenant, Team, Tier string
}

// demoKeys are the gateway's API keys. A real gateway looks keys up in its
// own database; the limiter only needs the user, tenant and attributes
// that the policy's rules key and match on.
var demoKeys = map[string]caller{
	"sk-demo-alice": {User: "alice", Tenant: "acme", Team: "research", Tier: "pro"},
	"sk-demo-bob":   {User: "bob", Tenant: "acme", Team: "research", Tier: "pro"},
	"sk-demo-carol": {User: "carol", Tenant: "acme", Team: "support", Tier: "trial"},
	"sk-demo-dave":  {User: "dave", Tenant: "hobbyco", Team: "hobby", Tier: "pro"},
}

type callerKey struct{}

// authenticate admits requests that carry a known API key ("Authorization:
// Bearer sk-...") and puts the caller in the request's context; others
// get 401 in OpenAI's format.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c, known := demoKeys[key]
		if !ok || !known {
			openAIError(w, http.StatusUnauthorized, "invalid_request_error", "unknown API key")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// identity tells the limiter who the caller is: the dimensions user and
// tenant, the custom attribute team (declared in policy.yaml), and the
// claims that predicates read as auth.identity (tier). The api_key
// dimension comes from the Authorization header itself.
func identity(r *http.Request) httplimit.Identity {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return httplimit.Identity{
		User:   c.User,
		Tenant: c.Tenant,
		Custom: map[string]string{"team": c.Team},
		Claims: map[string]any{"tier": c.Tier},
	}
}

// deny answers a request the limiter refused. Rate limits, quotas and
// budgets get the rejection their rule has in policy.yaml; a guard (a
// model the policy does not allow) gets its rule's status in OpenAI's
// format, so that SDKs report the reason.
func deny(w http.ResponseWriter, r *http.Request, res *httplimit.Result) {
	if err := res.Decision.Limiting.Err; err != nil {
		code := "invalid_request"
		if errors.Is(err, policy.ErrModelNotAllowed) || errors.Is(err, policy.ErrModelDenied) {
			code = "model_not_found"
		}
		writeJSON(w, httplimit.Status(&res.Decision), map[string]any{"error": map[string]any{
			"message": err.Error(), "type": "invalid_request_error", "code": code, "param": nil}})
		return
	}
	httplimit.WriteRejection(w, r, res)
}
