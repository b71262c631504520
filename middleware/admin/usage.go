package admin

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/ledger"
)

// UsageReport is the answer of GET /usage.
type UsageReport struct {
	// Period is the start of the period.
	Period time.Time `json:"period"`
	// Group is the group's name, as "tenant+model".
	Group string `json:"group"`
	// Subject maps each dimension of the group to its value; an API key
	// is shown as "#" and 32 hex digits of its SHA-256.
	Subject map[string]string `json:"subject"`
	// Usage is the subject's usage in the period.
	Usage ledger.Usage `json:"usage"`
}

// periodOf reads the period parameter: empty or "current", "previous", a
// date (2026-11-22, midnight UTC) or an RFC 3339 time within the period.
func (h *Handler) periodOf(v string) (time.Time, error) {
	now := h.cfg.now()
	switch v {
	case "", "current":
		return now, nil
	case "previous":
		return now.Add(-h.cfg.ledger.PeriodLength()), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New(`period must be "current", "previous", a date (2026-11-22) or an RFC 3339 time`)
}

// usage answers the usage of one subject: GET
// /usage?api_key=...&period=2026-11-22, with ?group= naming the group
// when the dimensions given are not exactly one group's.
func (h *Handler) usage(w http.ResponseWriter, r *http.Request) {
	lg := h.cfg.ledger
	if lg == nil {
		problem(w, http.StatusNotFound, "no usage ledger is configured")
		return
	}
	q := r.URL.Query()
	t, err := h.periodOf(q.Get("period"))
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	facts, names, err := factsOf(q)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	var group ledger.Group
	if g := q.Get("group"); g != "" {
		group = ledger.ParseGroup(g)
	} else {
		slices.Sort(names)
		for _, g := range lg.Groups() {
			dims := make([]string, len(g))
			for i, d := range g {
				dims[i] = string(d)
			}
			if slices.Sort(dims); slices.Equal(dims, names) {
				group = g
				break
			}
		}
		if group == nil {
			problem(w, http.StatusBadRequest, "the dimensions "+strings.Join(names, ", ")+" are not those of one group; name it with ?group= (groups: "+groupNames(lg)+")")
			return
		}
	}
	u, err := lg.Usage(r.Context(), t, ledger.Subject{Group: group, Facts: facts})
	switch {
	case errors.Is(err, ledger.ErrUnknownGroup), errors.Is(err, ledger.ErrMissingDimension):
		problem(w, http.StatusBadRequest, err.Error()+" (groups: "+groupNames(lg)+")")
		return
	case err != nil:
		problem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	subject := map[string]string{}
	for _, d := range group {
		v, _ := facts.Get(d)
		subject[string(d)] = ledger.ExportedValue(d, v)
	}
	writeJSON(w, http.StatusOK, UsageReport{Period: lg.Period(t), Group: group.String(), Subject: subject, Usage: u})
}

func groupNames(lg *ledger.Ledger) string {
	var names []string
	for _, g := range lg.Groups() {
		names = append(names, g.String())
	}
	return strings.Join(names, ", ")
}

// countingWriter tells whether anything reached the client.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// export streams a period's usage: GET /usage/export?period=&format=csv|json
// (the default follows the Accept header, else JSON). A failure after the
// first bytes were sent aborts the response, so that a client never takes
// a truncated export for a whole one.
func (h *Handler) export(w http.ResponseWriter, r *http.Request) {
	lg := h.cfg.ledger
	if lg == nil {
		problem(w, http.StatusNotFound, "no usage ledger is configured")
		return
	}
	q := r.URL.Query()
	t, err := h.periodOf(q.Get("period"))
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	name := q.Get("format")
	if name == "" {
		name = "json"
		if strings.Contains(r.Header.Get("Accept"), "text/csv") {
			name = "csv"
		}
	}
	format, ok := ledger.ParseFormat(name)
	if !ok {
		problem(w, http.StatusBadRequest, `format must be "csv" or "json"`)
		return
	}
	ctype, ext := "application/json", "json"
	if format == ledger.CSV {
		ctype, ext = "text/csv; charset=utf-8", "csv"
	}
	period := lg.Period(t)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="usage-`+period.Format("20060102T150405Z")+"."+ext+`"`)
	cw := &countingWriter{w: w}
	if err := lg.Export(r.Context(), cw, format, t); err != nil {
		h.cfg.logger.Warn("tollgate admin: export failed", slog.Any("error", err))
		if cw.n == 0 {
			w.Header().Del("Content-Disposition")
			problem(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		panic(http.ErrAbortHandler)
	}
}
