package main

import (
	"crypto/rand"
	"log/slog"
	"net/http"

	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/admin"
	"github.com/tollgate-go/tollgate/policy"
)

// adminAPI is the gateway's management API, every route behind the token:
// package admin's (GET /rules, PUT /rules with a new policy document,
// PUT /rules/{name}/mode, GET and DELETE /keys?user=... to inspect and
// reset counters, GET /usage?tenant=..., GET /usage/export, GET /health),
// and GET /alerts, the budget alerts fired.
func adminAPI(lim *limiter.Limiter, r *policy.Reloader, usage *ledger.Ledger, alerts *budgetAlerts, token string, logger *slog.Logger) (http.Handler, error) {
	auth := admin.BearerToken(token)
	api, err := admin.New(lim, auth,
		admin.WithReloader(r), // documents PUT through the API are hot reloads too
		admin.WithLedger(usage),
		admin.WithLogger(logger),
	)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc("GET /alerts", func(w http.ResponseWriter, req *http.Request) {
		if err := auth.Authorize(req); err != nil {
			http.Error(w, "authorization required", http.StatusUnauthorized)
			return
		}
		writeJSON(w, http.StatusOK, alerts.list())
	})
	return mux, nil
}

// randomToken returns a fresh admin token.
func randomToken() string { return "adm-" + rand.Text() }
