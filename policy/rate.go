package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
)

// Rate is a limit per period, as policy files write it: "50/m" is 50 per
// minute, "100/5m" is 100 per five minutes.
//
// The grammar is <limit>/<multiplier><unit>, with no spaces, where limit is
// a whole number from 0 to 2^53 without leading zeros, the optional
// multiplier is a whole number of at least 2, and unit is one of ms, s, m,
// h or d. Each rate has exactly one spelling: the unit is the largest that
// divides the period, so "100/60s" must be written "100/m" and "100/1m"
// must be written "100/m". Periods run from 1ms to 366d.
type Rate struct {
	// Limit is the number of units per Period.
	Limit int64
	// Period is the window or refill period.
	Period time.Duration
}

var rateUnits = []struct {
	name string
	d    time.Duration
}{
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// String returns the canonical spelling of r, such as "50/m" or "100/5m".
func (r Rate) String() string {
	return strconv.FormatInt(r.Limit, 10) + "/" + formatPeriod(r.Period)
}

func formatPeriod(p time.Duration) string {
	for _, u := range rateUnits {
		if p%u.d == 0 {
			n := int64(p / u.d)
			if n == 1 {
				return u.name
			}
			return strconv.FormatInt(n, 10) + u.name
		}
	}
	return p.String()
}

// ParseRate parses a rate in its canonical spelling. Any other spelling is
// an *Error (with an empty Path) whose Suggestion is the canonical one
// when the intent is clear: ParseRate("60/hour") suggests "60/h".
func ParseRate(s string) (Rate, error) {
	r, e := parseRate(s)
	if e != nil {
		return Rate{}, e
	}
	return r, nil
}

const maxPeriod = time.Duration(algorithms.MaxPeriod) * time.Microsecond

func parseRate(s string) (Rate, *Error) {
	bad := func(suggestion, format string, args ...any) (Rate, *Error) {
		return Rate{}, &Error{Value: s, Message: fmt.Sprintf(format, args...), Suggestion: suggestion}
	}
	limit, mult, unit, ok := looseRate(s)
	if !ok {
		return bad("", "%q is not a rate: write <limit>/<period>, such as \"50/m\", \"10000/h\" or \"100/5m\" (units ms, s, m, h, d)", s)
	}
	if strings.HasPrefix(limit, "-") {
		return bad("", "%q has a negative limit", s)
	}
	limit = strings.TrimPrefix(limit, "+")
	if strings.Contains(limit, ".") {
		return bad("", "%q has a fractional limit: the limit is a whole number; scale the period instead (\"30/m\" rather than \"0.5/s\")", s)
	}
	n, err := strconv.ParseUint(strings.TrimLeft(limit, "0")+"0", 10, 64)
	n /= 10 // the appended 0 makes "" parse as 0
	if err != nil || n > algorithms.MaxLimit {
		return bad("", "%q has a limit over the largest, 2^53 = %d", s, int64(algorithms.MaxLimit))
	}
	if mult == 0 {
		return bad("", "%q has a window of 0: the window is from 1ms to 366d", s)
	}
	if mult > int64(maxPeriod/unit) {
		return bad("", "%q has a window over 366d", s)
	}
	r := Rate{Limit: int64(n), Period: time.Duration(mult) * unit}
	if r.Period > maxPeriod {
		return bad("", "%q has a window over 366d", s)
	}
	if c := r.String(); c != s {
		if _, _, _, strict := strictRate(s); strict {
			return bad(c, "%q is not in canonical form (each rate has one spelling)", s)
		}
		return bad(c, "%q is not a rate", s)
	}
	return r, nil
}

var unitWords = map[string]time.Duration{
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// looseRate reads the many ways people write rates ("60/hour",
// "60 per hour", "60rpm", "1,000/1m", "100/5 minutes") into a limit (as
// written, possibly signed or fractional), a multiplier and a unit.
func looseRate(s string) (limit string, mult int64, unit time.Duration, ok bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	if len(t) > 64 {
		return "", 0, 0, false
	}
	t = strings.NewReplacer(" per ", "/", "per", "/", ",", "", "_", "", " ", "").Replace(t)
	for _, sfx := range []struct {
		s string
		u time.Duration
	}{{"rps", time.Second}, {"rpm", time.Minute}, {"rph", time.Hour}, {"rpd", 24 * time.Hour}} {
		if strings.HasSuffix(t, sfx.s) && !strings.Contains(t, "/") {
			t = strings.TrimSuffix(t, sfx.s) + "/" + formatPeriod(sfx.u)
		}
	}
	num, per, found := strings.Cut(t, "/")
	if !found || num == "" || per == "" {
		return "", 0, 0, false
	}
	if !isNumber(num) {
		return "", 0, 0, false
	}
	i := 0
	for i < len(per) && '0' <= per[i] && per[i] <= '9' {
		i++
	}
	mult = 1
	if i > 0 {
		if i > 12 {
			return "", 0, 0, false
		}
		mult, _ = strconv.ParseInt(per[:i], 10, 64)
	}
	u, known := unitWords[per[i:]]
	if !known {
		return "", 0, 0, false
	}
	return num, mult, u, true
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 40 {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return true
}

// strictRate reports whether s has the shape <digits>/<digits?><unit>
// with a canonical unit, whatever its values.
func strictRate(s string) (limit, mult, unit string, ok bool) {
	limit, per, found := strings.Cut(s, "/")
	if !found || limit == "" || strings.Trim(limit, "0123456789") != "" {
		return "", "", "", false
	}
	i := 0
	for i < len(per) && '0' <= per[i] && per[i] <= '9' {
		i++
	}
	switch per[i:] {
	case "ms", "s", "m", "h", "d":
		return limit, per[:i], per[i:], true
	}
	return "", "", "", false
}
