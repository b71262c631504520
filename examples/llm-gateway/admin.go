package main

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/policy"
)

// adminAPI is the gateway's management API:
//
//	GET /rules                   the rules in force, with their modes
//	PUT /rules/{name}/mode       body enforce, shadow or off
//	GET /usage/{dimension}/{value}  today's usage of a user, tenant, team or model
//	GET /usage/export?format=csv    today's usage of every subject, CSV or JSON
//	GET /alerts                  the budget alerts fired
//
// INTEGRATION POINT: package middleware/admin (rules, mode toggle, key
// inspection and reset, usage export) is being written; once it lands,
// this handler becomes admin.New(lim, admin.BearerToken(token),
// admin.WithReloader(r), admin.WithLedger(usage)) plus /alerts.
func adminAPI(lim *limiter.Limiter, r *policy.Reloader, usage *ledger.Ledger, alerts *budgetAlerts) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rules", func(w http.ResponseWriter, _ *http.Request) {
		type rule struct {
			Name  string `json:"name"`
			Unit  string `json:"unit"`
			Limit int64  `json:"limit"`
			Mode  string `json:"mode"`
		}
		var rules []rule
		for _, ru := range lim.Rules() {
			rules = append(rules, rule{ru.Name, ru.Unit.String(), ru.Limit, ru.Mode.String()})
		}
		writeJSON(w, http.StatusOK, map[string]any{"reloads": r.Reloads(), "rules": rules})
	})
	mux.HandleFunc("PUT /rules/{name}/mode", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 64))
		mode, ok := limiter.ParseMode(strings.TrimSpace(string(b)))
		if !ok {
			http.Error(w, "the body must be enforce, shadow or off", http.StatusBadRequest)
			return
		}
		if err := lim.SetMode(req.PathValue("name"), mode); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /usage/{dimension}/{value}", func(w http.ResponseWriter, req *http.Request) {
		d := dimensions.Dimension(req.PathValue("dimension"))
		var f dimensions.Facts
		switch d {
		case dimensions.User:
			f.User = req.PathValue("value")
		case dimensions.Tenant:
			f.Tenant = req.PathValue("value")
		case dimensions.Model:
			f.Model = req.PathValue("value")
		case team:
			f.Custom = map[string]string{string(team): req.PathValue("value")}
		default:
			http.Error(w, "usage is kept by user, tenant, team and model", http.StatusNotFound)
			return
		}
		u, err := usage.Usage(req.Context(), time.Now(), ledger.Subject{Group: ledger.Group{d}, Facts: f})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	mux.HandleFunc("GET /usage/export", func(w http.ResponseWriter, req *http.Request) {
		f, ok := ledger.ParseFormat(cmp.Or(req.URL.Query().Get("format"), "csv"))
		if !ok {
			http.Error(w, "format is csv or json", http.StatusBadRequest)
			return
		}
		if f == ledger.CSV {
			w.Header().Set("Content-Type", "text/csv")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		usage.Export(req.Context(), w, f, time.Now())
	})
	mux.HandleFunc("GET /alerts", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, alerts.list())
	})
	return mux
}

// requireToken answers 401 to requests without "Authorization: Bearer token".
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// randomToken returns a fresh admin token.
func randomToken() string { return "adm-" + rand.Text() }
