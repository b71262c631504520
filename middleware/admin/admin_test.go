package admin_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/admin"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
)

const token = "s3cret"

const initialPolicy = `
version: 1
rules:
  - name: per-user
    algorithm: fixed_window
    limit: 2/m
    by: [user]
`

var t0 = time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)

// downStore fails every call while down is set.
type downStore struct {
	store.Store
	down bool
}

func (s *downStore) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if s.down {
		return errors.New("connection refused")
	}
	return s.Store.Apply(ctx, now, ops, results)
}

type env struct {
	srv *httptest.Server
	lim *limiter.Limiter
	lg  *ledger.Ledger
	st  *downStore
}

func setup(t *testing.T) *env {
	t.Helper()
	clock := func() time.Time { return t0 }
	st := &downStore{Store: memory.New()}
	lg, err := ledger.New(st, ledger.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limiter.New(st, nil, limiter.WithRecorder(lg), limiter.WithClock(clock), limiter.WithCircuitBreaker(2, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rl := policy.NewReloader(lim)
	if err := rl.Apply([]byte(initialPolicy)); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(lim, admin.BearerToken(token), admin.WithLedger(lg), admin.WithReloader(rl), admin.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{srv: srv, lim: lim, lg: lg, st: st}
}

type reply struct {
	status int
	ctype  string
	body   []byte
}

func (e *env) do(t *testing.T, method, path, body string, header ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/admin"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

func (r reply) want(t *testing.T, step string, status int, ctype string) {
	t.Helper()
	if r.status != status || !strings.HasPrefix(r.ctype, ctype) {
		t.Fatalf("%s: got %d %s, want %d %s\n%s", step, r.status, r.ctype, status, ctype, r.body)
	}
}

func TestNewRequiresAnAuthorizer(t *testing.T) {
	lim, err := limiter.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.New(lim, nil); !errors.Is(err, admin.ErrNoAuthorizer) {
		t.Errorf("nil authorizer: got %v, want ErrNoAuthorizer", err)
	}
	var f admin.AuthorizerFunc
	if _, err := admin.New(lim, f); !errors.Is(err, admin.ErrNoAuthorizer) {
		t.Errorf("nil AuthorizerFunc: got %v, want ErrNoAuthorizer", err)
	}
	if _, err := admin.New(nil, admin.BearerToken("x")); !errors.Is(err, admin.ErrNoLimiter) {
		t.Errorf("nil limiter: got %v, want ErrNoLimiter", err)
	}
}

func TestUnauthorized(t *testing.T) {
	e := setup(t)
	cases := []struct {
		name, method, path, auth string
	}{
		{"no header", "GET", "/rules", ""},
		{"wrong token", "GET", "/rules", "Bearer nope"},
		{"basic auth", "GET", "/health", "Basic czNjcmV0"},
		{"write without token", "PUT", "/rules/per-user/mode", ""},
		{"reset without token", "DELETE", "/keys?user=alice", ""},
		{"unknown route", "GET", "/nothing", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, e.srv.URL+"/admin"+c.path, strings.NewReader(`{"mode":"off"}`))
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: got %d %s, want 401 problem+json", c.name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	// Nothing changed.
	if r := e.lim.Rules(); r[0].Mode != limiter.Enforce {
		t.Errorf("an unauthorized call changed the mode to %s", r[0].Mode)
	}
}

func TestForbidden(t *testing.T) {
	lim, _ := limiter.New(memory.New(), nil)
	readOnly := admin.AuthorizerFunc(func(r *http.Request) error {
		if r.Method != http.MethodGet {
			return admin.ErrForbidden
		}
		return nil
	})
	h, err := admin.New(lim, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		method string
		want   int
	}{{"GET", 200}, {"PUT", 403}} {
		req, _ := http.NewRequest(c.method, srv.URL+"/rules", strings.NewReader("version: 1\nrules: []\n"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s /rules: got %d, want %d", c.method, resp.StatusCode, c.want)
		}
	}
}

func TestListAndGetRules(t *testing.T) {
	e := setup(t)
	r := e.do(t, "GET", "/rules", "")
	r.want(t, "list", 200, "application/json")
	var list struct{ Rules []admin.Rule }
	r.decode(t, &list)
	if len(list.Rules) != 1 {
		t.Fatalf("got %d rules, want 1", len(list.Rules))
	}
	want := admin.Rule{Name: "per-user", Algorithm: "fixed_window", Limit: 2, Period: "1m0s", Unit: "requests", By: []string{"user"}, Mode: "enforce", Timing: "before", OnStoreError: "default"}
	got := list.Rules[0]
	if got.Name != want.Name || got.Algorithm != want.Algorithm || got.Limit != want.Limit || got.Period != want.Period || got.Unit != want.Unit || strings.Join(got.By, ",") != "user" || got.Mode != want.Mode || got.Timing != want.Timing {
		t.Errorf("got %+v, want %+v", got, want)
	}
	r = e.do(t, "GET", "/rules/per-user", "")
	r.want(t, "get", 200, "application/json")
	r = e.do(t, "GET", "/rules/nope", "")
	r.want(t, "get unknown", 404, "application/problem+json")
	r = e.do(t, "POST", "/rules", "")
	r.want(t, "wrong method", 405, "application/problem+json")
}

func TestReplaceRules(t *testing.T) {
	e := setup(t)
	doc := `{"version": 1, "rules": [{"name": "per-model", "limit": "5/s", "by": ["model"]}, {"name": "per-user", "algorithm": "fixed_window", "limit": "2/m", "by": ["user"]}]}`
	r := e.do(t, "PUT", "/rules?dry_run=true", doc)
	r.want(t, "dry run", 200, "application/json")
	if n := len(e.lim.Rules()); n != 1 {
		t.Fatalf("a dry run changed the rules: %d rules", n)
	}
	r = e.do(t, "PUT", "/rules", doc, "Content-Type", "application/json")
	r.want(t, "replace", 200, "application/json")
	if n := len(e.lim.Rules()); n != 2 {
		t.Fatalf("after replace: %d rules, want 2", n)
	}
}

func TestInvalidDocumentIsRefused(t *testing.T) {
	e := setup(t)
	before := e.lim.Rules()
	docs := []struct {
		name, doc string
		paths     []string
	}{
		{"bad rate and algorithm", `
version: 1
rules:
  - {name: a, limit: 60/hour, algorithm: token_buket}
`, []string{"/rules/0/algorithm", "/rules/0/limit"}},
		{"not a document", "{{{", []string{""}},
		{"unknown parent", `
version: 1
rules:
  - {name: b, parent: c, share: 0.5}
`, []string{"/rules/0/parent"}},
	}
	for _, d := range docs {
		for _, q := range []string{"", "?dry_run=true"} {
			r := e.do(t, "PUT", "/rules"+q, d.doc)
			r.want(t, d.name+q, http.StatusUnprocessableEntity, "application/problem+json")
			var p admin.Problem
			r.decode(t, &p)
			if p.Status != 422 || p.Title == "" || len(p.Errors) == 0 {
				t.Errorf("%s: problem %+v", d.name, p)
			}
			var paths []string
			for _, e := range p.Errors {
				paths = append(paths, e.Path)
				if e.Message == "" {
					t.Errorf("%s: error at %q without a message", d.name, e.Path)
				}
			}
			if strings.Join(paths, " ") != strings.Join(d.paths, " ") {
				t.Errorf("%s%s: paths %q, want %q", d.name, q, paths, d.paths)
			}
		}
	}
	after := e.lim.Rules()
	if len(after) != len(before) || after[0].Name != before[0].Name {
		t.Errorf("the rules changed after refused documents: %v", after)
	}
	// The suggestion is passed on.
	r := e.do(t, "PUT", "/rules", docs[0].doc)
	if !strings.Contains(string(r.body), `"suggestion":"token_bucket"`) {
		t.Errorf("no suggestion in %s", r.body)
	}
}

func TestModeToggleChangesWhatCheckDecides(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	alice := &limiter.Request{Facts: dimensions.Facts{User: "alice"}}
	check := func() bool { return e.lim.Check(ctx, alice).Allowed }
	check()
	check()
	if check() {
		t.Fatal("third request in enforce mode was allowed")
	}
	steps := []struct {
		mode    string
		allowed bool
	}{
		{"shadow", true},
		{"off", true},
		{"enforce", false},
	}
	for _, s := range steps {
		r := e.do(t, "PUT", "/rules/per-user/mode", `{"mode": "`+s.mode+`"}`)
		r.want(t, "set "+s.mode, 200, "application/json")
		var rule admin.Rule
		r.decode(t, &rule)
		if rule.Mode != s.mode {
			t.Errorf("answer shows mode %s, want %s", rule.Mode, s.mode)
		}
		d := e.lim.Check(ctx, alice)
		if d.Allowed != s.allowed {
			t.Errorf("mode %s: allowed %v, want %v", s.mode, d.Allowed, s.allowed)
		}
		if s.mode == "shadow" && !d.ShadowDenied {
			t.Errorf("mode shadow: ShadowDenied false")
		}
	}
	bad := []struct {
		path, body string
		status     int
	}{
		{"/rules/per-user/mode", `{"mode": "loud"}`, 422},
		{"/rules/per-user/mode", `{"mood": "off"}`, 400},
		{"/rules/per-user/mode", `not json`, 400},
		{"/rules/nope/mode", `{"mode": "off"}`, 404},
	}
	for _, b := range bad {
		r := e.do(t, "PUT", b.path, b.body)
		r.want(t, b.body, b.status, "application/problem+json")
	}
}

func TestInspectAndResetKey(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	alice := &limiter.Request{Facts: dimensions.Facts{User: "alice"}}
	e.lim.Check(ctx, alice)
	var ks admin.KeyState
	r := e.do(t, "GET", "/keys?user=alice", "")
	r.want(t, "inspect", 200, "application/json")
	r.decode(t, &ks)
	if !ks.Allowed || ks.Limiting != "per-user" || len(ks.Rules) != 1 || ks.Rules[0].Remaining != 1 || ks.Rules[0].Limit != 2 {
		t.Errorf("inspect after one request: %+v", ks)
	}
	if ks.Rules[0].ResetSeconds <= 0 || ks.Rules[0].ResetSeconds > 60 {
		t.Errorf("reset_seconds %v, want in (0, 60]", ks.Rules[0].ResetSeconds)
	}
	e.lim.Check(ctx, alice)
	r = e.do(t, "GET", "/keys?user=alice", "")
	r.decode(t, &ks)
	if ks.Allowed || ks.Rules[0].Remaining != 0 || ks.Rules[0].RetryAfterSeconds <= 0 {
		t.Errorf("inspect at the limit: %+v", ks)
	}
	// Another key is untouched.
	r = e.do(t, "GET", "/keys?user=bob", "")
	r.decode(t, &ks)
	if !ks.Allowed || ks.Rules[0].Remaining != 2 {
		t.Errorf("bob: %+v", ks)
	}
	r = e.do(t, "DELETE", "/keys?user=alice", "")
	r.want(t, "reset", 200, "application/json")
	if !e.lim.Check(ctx, alice).Allowed {
		t.Error("alice denied after reset")
	}
	for _, path := range []string{"/keys", "/keys?user=a&user=b", "/keys?user="} {
		e.do(t, "GET", path, "").want(t, "inspect "+path, 400, "application/problem+json")
		e.do(t, "DELETE", path, "").want(t, "reset "+path, 400, "application/problem+json")
	}
}

func TestUsageQueryAndExport(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	facts := dimensions.Facts{User: "alice", APIKey: "sk-1", Tenant: "acme", Model: "gpt-4o", Custom: map[string]string{"app": "chat"}}
	for range 3 {
		d := e.lim.Check(ctx, &limiter.Request{Facts: facts})
		if d.Reservation != nil {
			d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 10, OutputTokens: 20, Cost: 5})
		}
	}
	var rep admin.UsageReport
	r := e.do(t, "GET", "/usage?api_key=sk-1&period=2026-11-22", "")
	r.want(t, "usage by key", 200, "application/json")
	r.decode(t, &rep)
	want := ledger.Usage{Requests: 2, Denials: 1, InputTokens: 20, OutputTokens: 40, Cost: 10}
	if rep.Usage != want || rep.Group != "api_key" || !rep.Period.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("got %+v, want usage %+v in group api_key, period 2026-11-22", rep, want)
	}
	if strings.Contains(string(r.body), "sk-1") {
		t.Errorf("the answer holds the raw key: %s", r.body)
	}
	// The key as the answer shows it queries the same counters.
	hashed := rep.Subject["api_key"]
	r = e.do(t, "GET", "/usage?api_key="+url.QueryEscape(hashed), "")
	r.want(t, "usage by hashed key", 200, "application/json")
	r.decode(t, &rep)
	if rep.Usage != want || rep.Subject["api_key"] != hashed {
		t.Errorf("by hashed key: got %+v, want %+v under %s", rep, want, hashed)
	}
	for _, q := range []string{"app=chat", "tenant=acme&period=current", "model=gpt-4o&group=model"} {
		r = e.do(t, "GET", "/usage?"+q, "")
		r.want(t, q, 200, "application/json")
		r.decode(t, &rep)
		if rep.Usage != want {
			t.Errorf("%s: got %+v, want %+v", q, rep.Usage, want)
		}
	}
	r = e.do(t, "GET", "/usage?tenant=acme&period=previous", "")
	r.decode(t, &rep)
	if rep.Usage != (ledger.Usage{}) {
		t.Errorf("previous period: %+v, want zero", rep.Usage)
	}
	for _, q := range []string{"user=alice", "tenant=acme&model=gpt-4o", "tenant=acme&period=yesterday", "tenant=acme&group=user"} {
		e.do(t, "GET", "/usage?"+q, "").want(t, q, 400, "application/problem+json")
	}

	r = e.do(t, "GET", "/usage/export?format=csv&period=2026-11-22", "")
	r.want(t, "export csv", 200, "text/csv")
	records, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || len(records) != 5 {
		t.Fatalf("CSV export: %d records, %v; want a header and 4 rows\n%s", len(records), err, r.body)
	}
	r = e.do(t, "GET", "/usage/export", "", "Accept", "application/json")
	r.want(t, "export json", 200, "application/json")
	var rows []ledger.Row
	r.decode(t, &rows)
	if len(rows) != 4 || rows[0].Usage != want {
		t.Errorf("JSON export: %+v", rows)
	}
	r = e.do(t, "GET", "/usage/export", "", "Accept", "text/csv")
	r.want(t, "export by Accept", 200, "text/csv")
	e.do(t, "GET", "/usage/export?format=xml", "").want(t, "bad format", 400, "application/problem+json")

	// A store that fails before anything was sent gives a problem.
	e.st.down = true
	e.do(t, "GET", "/usage/export", "").want(t, "export, store down", 503, "application/problem+json")
	e.do(t, "GET", "/usage?tenant=acme", "").want(t, "usage, store down", 503, "application/problem+json")
}

func TestUsageWithoutLedger(t *testing.T) {
	lim, _ := limiter.New(memory.New(), nil)
	h, _ := admin.New(lim, admin.BearerToken(token))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/usage?tenant=a", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("got %d, want 404", resp.StatusCode)
	}
}

func TestHealth(t *testing.T) {
	e := setup(t)
	var h struct {
		Status, Store string
		CircuitOpen   bool `json:"circuit_open"`
		Rules         int
	}
	r := e.do(t, "GET", "/health", "")
	r.want(t, "healthy", 200, "application/json")
	r.decode(t, &h)
	if h.Status != "ok" || h.Store != "ok" || h.CircuitOpen || h.Rules != 1 {
		t.Errorf("healthy: %+v", h)
	}
	e.st.down = true
	r = e.do(t, "GET", "/health", "")
	r.want(t, "store down", 503, "application/json")
	r.decode(t, &h)
	if h.Store != "unreachable" || h.CircuitOpen {
		t.Errorf("store down: %+v", h)
	}
	// Two failed checks open the circuit (WithCircuitBreaker(2, ...)).
	alice := &limiter.Request{Facts: dimensions.Facts{User: "alice"}}
	e.lim.Check(context.Background(), alice)
	e.lim.Check(context.Background(), alice)
	e.st.down = false
	r = e.do(t, "GET", "/health", "")
	r.want(t, "circuit open", 503, "application/json")
	r.decode(t, &h)
	if h.Store != "ok" || !h.CircuitOpen {
		t.Errorf("circuit open: %+v", h)
	}
}

func TestProblemsAreJSON(t *testing.T) {
	e := setup(t)
	r := e.do(t, "GET", "/nothing/here", "")
	r.want(t, "unknown route", 404, "application/problem+json")
	var p admin.Problem
	r.decode(t, &p)
	if p.Type != "about:blank" || p.Status != 404 || p.Title != "Not Found" || p.Detail == "" {
		t.Errorf("problem: %+v", p)
	}
	big := strings.Repeat("#", policy.MaxDocumentSize+1)
	e.do(t, "PUT", "/rules", big).want(t, "document too large", 413, "application/problem+json")
}

// TestInspectKeyWithHeadersAndClaims: /keys passes header.* and claim.*
// parameters to the rules' predicates, so a rule that looks at them can
// be inspected and reset.
func TestInspectKeyWithHeadersAndClaims(t *testing.T) {
	e := setup(t)
	doc := `
version: 1
rules:
  - name: pro-tier
    algorithm: fixed_window
    limit: 5/m
    by: [user]
    when: 'request.headers["x-tier"] == "pro" && auth.identity.plan == "gold"'
`
	e.do(t, "PUT", "/rules", doc, "Content-Type", "application/yaml").want(t, "replace", 200, "application/json")
	ctx := context.Background()
	alice := &limiter.Request{Facts: dimensions.Facts{User: "alice"},
		Header: map[string][]string{"X-Tier": {"pro"}}, Identity: map[string]any{"plan": "gold"}}
	for range 2 {
		if !e.lim.Check(ctx, alice).Allowed {
			t.Fatal("alice denied")
		}
	}
	var ks admin.KeyState
	r := e.do(t, "GET", "/keys?user=alice&header.X-Tier=pro&claim.plan=gold", "")
	r.want(t, "inspect with header and claim", 200, "application/json")
	r.decode(t, &ks)
	if len(ks.Rules) != 1 || ks.Rules[0].Rule != "pro-tier" || ks.Rules[0].Remaining != 3 {
		t.Fatalf("inspect with header and claim: %+v, want pro-tier with 3 remaining", ks)
	}
	// Without the claim the predicate does not hold: no rule matches.
	e.do(t, "GET", "/keys?user=alice&header.x-tier=pro", "").decode(t, &ks)
	if len(ks.Rules) != 0 {
		t.Errorf("inspect without the claim: %+v, want no rule", ks)
	}
	e.do(t, "DELETE", "/keys?user=alice&header.x-tier=pro&claim.plan=gold", "").want(t, "reset", 200, "application/json")
	e.do(t, "GET", "/keys?user=alice&header.x-tier=pro&claim.plan=gold", "").decode(t, &ks)
	if len(ks.Rules) != 1 || ks.Rules[0].Remaining != 5 {
		t.Errorf("after the reset: %+v, want 5 remaining", ks)
	}
	for _, path := range []string{"/keys?user=a&header.=x", "/keys?user=a&claim.=x", "/keys?user=a&claim.plan=a&claim.plan=b", "/keys?header.x-tier=pro"} {
		e.do(t, "GET", path, "").want(t, "inspect "+path, 400, "application/problem+json")
	}
	e.do(t, "GET", "/usage?api_key=k&header.x-tier=pro", "").want(t, "usage with a header", 400, "application/problem+json")
}
