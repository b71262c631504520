package admin

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/policy"
)

// Rule is how the API shows a limiter.Rule. Predicates and guard functions
// are code, so only their presence is shown.
type Rule struct {
	// Name is the rule's name.
	Name string `json:"name"`
	// Algorithm is the canonical algorithm name; empty for a guard.
	Algorithm string `json:"algorithm,omitempty"`
	// Limit is the number of Units per Period.
	Limit int64 `json:"limit"`
	// Period is a Go duration ("1m0s"); empty for calendar windows.
	Period string `json:"period,omitempty"`
	// Burst is the bucket capacity; 0 means Limit.
	Burst int64 `json:"burst,omitempty"`
	// Calendar is "day", "week" or "month" for calendar windows.
	Calendar string `json:"calendar,omitempty"`
	// Location is the time zone of calendar windows.
	Location string `json:"location,omitempty"`
	// Unit is what the rule counts: requests, tokens, input_tokens,
	// output_tokens or cost.
	Unit string `json:"unit"`
	// By lists the dimensions that key the rule's counters.
	By []string `json:"by"`
	// Mode is enforce, shadow or off.
	Mode string `json:"mode"`
	// Timing is "before" (charged at check time) or "after" (delayed).
	Timing string `json:"timing"`
	// OnStoreError is the rule's fail mode.
	OnStoreError string `json:"on_store_error"`
	// Predicate reports whether the rule has a When matcher.
	Predicate bool `json:"predicate"`
	// Guard reports whether the rule is a guard.
	Guard bool `json:"guard"`
}

var calendarNames = [...]string{"", "day", "week", "month"}

func ruleOf(r *limiter.Rule) Rule {
	out := Rule{
		Name:         r.Name,
		Limit:        r.Limit,
		Burst:        r.Burst,
		Unit:         r.Unit.String(),
		By:           make([]string, len(r.By)),
		Mode:         r.Mode.String(),
		Timing:       "before",
		OnStoreError: r.OnStoreError.String(),
		Predicate:    r.When != nil,
		Guard:        r.Guard != nil,
	}
	for i, d := range r.By {
		out.By[i] = string(d)
	}
	if r.Timing == limiter.After || r.Timing == limiter.TimingDefault && r.Unit == limiter.OutputTokens {
		out.Timing = "after"
	}
	if r.Guard != nil {
		out.Limit, out.Burst, out.Timing = 0, 0, "before"
		return out
	}
	kind := r.Algorithm
	if kind == 0 {
		kind = algorithms.TokenBucket
	}
	out.Algorithm = kind.String()
	if r.Calendar != limiter.NoCalendar && int(r.Calendar) < len(calendarNames) {
		out.Calendar = calendarNames[r.Calendar]
		out.Location = "UTC"
		if r.Location != nil {
			out.Location = r.Location.String()
		}
	} else {
		out.Period = r.Period.String()
	}
	return out
}

func (h *Handler) listRules(w http.ResponseWriter, r *http.Request) {
	rules := h.lim.Rules()
	out := make([]Rule, len(rules))
	for i := range rules {
		out[i] = ruleOf(&rules[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": out})
}

func (h *Handler) getRule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, rule := range h.lim.Rules() {
		if rule.Name == name {
			writeJSON(w, http.StatusOK, ruleOf(&rule))
			return
		}
	}
	problem(w, http.StatusNotFound, "no rule named "+strconv.Quote(name))
}

// replaceRules loads a policy document (YAML or JSON) and puts its rules in
// force, or with ?dry_run=true only validates it. A refused document keeps
// the old rules and is answered 422 with every problem and its JSON path.
func (h *Handler) replaceRules(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, policy.MaxDocumentSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem(w, http.StatusRequestEntityTooLarge, "the document is over "+strconv.Itoa(policy.MaxDocumentSize)+" bytes")
			return
		}
		problem(w, http.StatusBadRequest, "reading the document: "+err.Error())
		return
	}
	dryRun, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
	if dryRun {
		p, err := policy.Load(data)
		if err == nil {
			err = h.lim.ValidateRules(p.Rules())
		}
		if err != nil {
			refuse(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"valid": true, "applied": false, "rules": len(p.Rules())})
		return
	}
	if err := h.cfg.reloader.Apply(data); err != nil {
		h.cfg.logger.Warn("tollgate admin: rules refused", slog.Any("error", err))
		refuse(w, err)
		return
	}
	h.cfg.logger.Info("tollgate admin: rules replaced", slog.Int("rules", len(h.lim.Rules())))
	h.listRulesApplied(w)
}

func (h *Handler) listRulesApplied(w http.ResponseWriter) {
	rules := h.lim.Rules()
	out := make([]Rule, len(rules))
	for i := range rules {
		out[i] = ruleOf(&rules[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true, "applied": true, "rules": out})
}

// refuse answers a document that policy or the limiter refused.
func refuse(w http.ResponseWriter, err error) {
	p := Problem{Status: http.StatusUnprocessableEntity, Detail: "the policy document was refused; the rules in force did not change"}
	for _, e := range policy.Errors(err) {
		p.Errors = append(p.Errors, PolicyError{Path: e.Path, Message: e.Message, Value: e.Value, Suggestion: e.Suggestion})
	}
	if len(p.Errors) == 0 {
		var re *limiter.RuleError
		path := ""
		if errors.As(err, &re) {
			path = "/rules/" + strconv.Itoa(re.Index)
		}
		p.Errors = []PolicyError{{Path: path, Message: err.Error()}}
	}
	writeProblem(w, p)
}

// setMode changes a rule's mode; the body is {"mode": "enforce"|"shadow"|"off"}.
// The change lasts until the next document replaces the rules.
func (h *Handler) setMode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var body struct {
		Mode string `json:"mode"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		problem(w, http.StatusBadRequest, `the body must be {"mode": "enforce" | "shadow" | "off"}: `+err.Error())
		return
	}
	mode, ok := limiter.ParseMode(body.Mode)
	if !ok {
		problem(w, http.StatusUnprocessableEntity, "unknown mode "+strconv.Quote(body.Mode)+`; want "enforce", "shadow" or "off"`)
		return
	}
	if err := h.lim.SetMode(name, mode); err != nil {
		if errors.Is(err, limiter.ErrUnknownRule) {
			problem(w, http.StatusNotFound, "no rule named "+strconv.Quote(name))
			return
		}
		problem(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	h.cfg.logger.Info("tollgate admin: rule mode changed", slog.String("rule", name), slog.String("mode", mode.String()))
	h.getRule(w, r)
}
