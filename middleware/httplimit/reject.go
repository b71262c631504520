package httplimit

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/limiter"
)

// StatusCoder is implemented by a guard rule's error that names the HTTP
// status of its rejection. Other guard errors are answered 400.
type StatusCoder interface {
	StatusCode() int
}

// Status returns the HTTP status WriteRejection answers a denial with:
// 503 when a rule failing closed denied because the store could not
// decide; the denying rule's Rejection.Status (guard rules included); a
// guard's status (400 unless its error is a StatusCoder); else 429.
func Status(d *limiter.Decision) int {
	lim := &d.Limiting
	switch {
	case lim.StoreError:
		return http.StatusServiceUnavailable
	case lim.Rule != nil && lim.Rule.Reject != nil && lim.Rule.Reject.Status != 0:
		return lim.Rule.Reject.Status
	case lim.Err != nil:
		if sc, ok := lim.Err.(StatusCoder); ok && sc.StatusCode() >= 400 && sc.StatusCode() < 600 {
			return sc.StatusCode()
		}
		return http.StatusBadRequest
	}
	return http.StatusTooManyRequests
}

// WriteRejection is the default DenyFunc. For a rule with a Rejection it
// writes the rule's status, headers and body (Content-Type defaults to
// application/json). Otherwise it writes an application/problem+json body
// (RFC 9457) with the status of Status, naming the rule in "rule" and the
// reason in "detail":
//
//	{"type":"about:blank","title":"Too Many Requests","status":429,
//	 "detail":"rate limit exceeded, retry in 2s","rule":"per-key"}
//
// A guard rule's Rejection is used like any other's. A store failure
// answered 503 never uses the rule's Rejection.
func WriteRejection(w http.ResponseWriter, r *http.Request, res *Result) {
	d := &res.Decision
	lim := &d.Limiting
	status := Status(d)
	h := w.Header()
	if lim.Rule != nil && lim.Rule.Reject != nil && !lim.StoreError {
		rej := lim.Rule.Reject
		for k, v := range rej.Headers {
			h.Set(k, v)
		}
		ct := rej.ContentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(rej.Body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(rej.Body)
		}
		return
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"type":"about:blank","title":`...)
	b = strconv.AppendQuote(b, http.StatusText(status))
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"detail":`...)
	b = strconv.AppendQuote(b, detail(d))
	if lim.Rule != nil {
		b = append(b, `,"rule":`...)
		b = strconv.AppendQuote(b, lim.Rule.Name)
	}
	b = append(b, "}\n"...)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// detail says why d denied, in words.
func detail(d *limiter.Decision) string {
	lim := &d.Limiting
	var de *DownshiftError
	switch {
	case errors.As(lim.Err, &de):
		// The rewrite's own error may describe the host's internals.
		return "the budget admits this request only on model " + strconv.Quote(de.To) +
			", and the gateway could not rewrite it to that model"
	case lim.StoreError:
		return "rate limiter unavailable"
	case lim.Err != nil:
		return lim.Err.Error()
	case lim.Reason == algorithms.ReasonExceedsCapacity:
		return "request exceeds the rate limit's capacity and will never be admitted"
	case d.RetryAfter > 0:
		return "rate limit exceeded, retry in " + strconv.FormatInt(RetryAfterSeconds(d.RetryAfter), 10) + "s"
	}
	return "rate limit exceeded"
}

// reason is a short word for logs.
func reason(d *limiter.Decision) string {
	lim := &d.Limiting
	var de *DownshiftError
	switch {
	case errors.As(lim.Err, &de):
		return "downshift_not_applied"
	case lim.StoreError:
		return "store_unavailable"
	case lim.Err != nil:
		return "guard: " + lim.Err.Error()
	}
	return lim.Reason.String()
}
