package admin

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

// reserved are query parameters that are not dimensions.
var reserved = map[string]bool{"group": true, "period": true, "format": true, "dry_run": true}

var errNoDimension = errors.New("give at least one dimension in the query, as ?user=alice&model=gpt-4o")

// Query parameters named "header.<Name>" and "claim.<name>" give the
// headers and identity claims that rule predicates (CEL when) see, for
// GET and DELETE /keys.
const (
	headerParam = "header."
	claimParam  = "claim."
)

// requestOf reads the request of a /keys query: its dimensions (factsOf),
// and the headers and identity claims its predicates see. It returns the
// request and the names of its dimensions.
func requestOf(q url.Values) (*limiter.Request, []string, error) {
	rest := url.Values{}
	req := &limiter.Request{}
	for name, values := range q {
		header, isHeader := strings.CutPrefix(name, headerParam)
		claim, isClaim := strings.CutPrefix(name, claimParam)
		if !isHeader && !isClaim {
			rest[name] = values
			continue
		}
		if (isHeader && header == "") || (isClaim && claim == "") {
			return nil, nil, errors.New("parameter " + strconv.Quote(name) + " names no header or claim")
		}
		if len(values) != 1 {
			return nil, nil, errors.New("parameter " + strconv.Quote(name) + " needs exactly one value")
		}
		switch {
		case isHeader && req.Header == nil:
			req.Header = http.Header{}
		case isClaim && req.Identity == nil:
			req.Identity = map[string]any{}
		}
		if isHeader {
			http.Header(req.Header).Set(header, values[0])
		} else {
			req.Identity[claim] = values[0]
		}
	}
	facts, names, err := factsOf(rest)
	if err != nil {
		return nil, nil, err
	}
	req.Facts = facts
	return req, names, nil
}

// factsOf reads the dimensions in a query: the predefined ones by name
// (user, tenant, api_key, model, tool, route, client_ip), "method", and
// any other name as a custom attribute. It returns them and their names.
func factsOf(q url.Values) (dimensions.Facts, []string, error) {
	var f dimensions.Facts
	var names []string
	for name, values := range q {
		if reserved[name] {
			continue
		}
		if strings.HasPrefix(name, headerParam) || strings.HasPrefix(name, claimParam) {
			return f, nil, errors.New("parameter " + strconv.Quote(name) + ": headers and claims select rules in /keys; they are not dimensions of usage")
		}
		if len(values) != 1 || values[0] == "" {
			return f, nil, errors.New("dimension " + strconv.Quote(name) + " needs exactly one non-empty value")
		}
		v := values[0]
		names = append(names, name)
		switch dimensions.Dimension(name) {
		case dimensions.User:
			f.User = v
		case dimensions.Tenant:
			f.Tenant = v
		case dimensions.APIKey:
			f.APIKey = v
		case dimensions.Model:
			f.Model = v
		case dimensions.Tool:
			f.Tool = v
		case dimensions.Route:
			f.Route = v
		case dimensions.ClientIP:
			f.ClientIP = v
		default:
			if name == "method" {
				f.Method = v
				continue
			}
			if f.Custom == nil {
				f.Custom = map[string]string{}
			}
			f.Custom[name] = v
		}
	}
	if len(names) == 0 {
		return f, nil, errNoDimension
	}
	return f, names, nil
}

// RuleState is one rule's state for a key, as GET /keys shows it.
type RuleState struct {
	// Rule is the rule's name.
	Rule string `json:"rule"`
	// Unit is what the rule counts.
	Unit string `json:"unit"`
	// Mode is enforce or shadow (rules that are off match nothing).
	Mode string `json:"mode"`
	// Allowed reports whether one more unit would be admitted.
	Allowed bool `json:"allowed"`
	// Limit is the rule's capacity, Remaining what is left, in Unit.
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	// ResetSeconds is the time until the counter is full again.
	ResetSeconds float64 `json:"reset_seconds"`
	// RetryAfterSeconds is, when not allowed, the time until it would be.
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
	// StoreError reports that the store could not decide for this rule.
	StoreError bool `json:"store_error,omitempty"`
}

// KeyState is the answer of GET /keys.
type KeyState struct {
	// Allowed reports whether a request with these dimensions would be
	// admitted now (the limiter's Peek).
	Allowed bool `json:"allowed"`
	// Limiting names the tightest rule, if any rule matched.
	Limiting string `json:"limiting,omitempty"`
	// Rules lists every matching rule.
	Rules []RuleState `json:"rules"`
}

// inspectKey answers what a request with the query's dimensions (and
// headers and claims, for predicates) would get now, changing nothing.
func (h *Handler) inspectKey(w http.ResponseWriter, r *http.Request) {
	req, _, err := requestOf(r.URL.Query())
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	d := h.lim.Peek(r.Context(), req)
	if d.Err != nil {
		problem(w, http.StatusServiceUnavailable, "the store could not answer: "+d.Err.Error())
		return
	}
	out := KeyState{Allowed: d.Allowed, Rules: make([]RuleState, 0, d.Len())}
	if d.Limiting.Rule != nil {
		out.Limiting = d.Limiting.Rule.Name
	}
	for i := range d.Len() {
		rr := d.Result(i)
		out.Rules = append(out.Rules, RuleState{
			Rule:              rr.Rule.Name,
			Unit:              rr.Rule.Unit.String(),
			Mode:              rr.Rule.Mode.String(),
			Allowed:           rr.Allowed,
			Limit:             rr.Limit,
			Remaining:         rr.Remaining,
			ResetSeconds:      seconds(rr.Reset),
			RetryAfterSeconds: seconds(rr.RetryAfter),
			StoreError:        rr.StoreError,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// resetKey forgets the counters of every rule that matches the query's
// dimensions (and headers and claims), for those dimensions. At least one
// dimension is required.
func (h *Handler) resetKey(w http.ResponseWriter, r *http.Request) {
	req, names, err := requestOf(r.URL.Query())
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.lim.Reset(r.Context(), req); err != nil {
		problem(w, http.StatusServiceUnavailable, "the store could not reset: "+err.Error())
		return
	}
	h.cfg.logger.Info("tollgate admin: counters reset", slog.String("dimensions", strings.Join(names, ",")))
	writeJSON(w, http.StatusOK, map[string]any{"reset": true})
}
