package limiter

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
)

// ErrInvalidRule is wrapped by every error about a rule that cannot be used.
var ErrInvalidRule = errors.New("limiter: invalid rule")

// Unit is what a rule counts.
type Unit uint8

const (
	// Requests counts one per request.
	Requests Unit = iota
	// Tokens counts input plus output tokens.
	Tokens
	// InputTokens counts input (prompt) tokens.
	InputTokens
	// OutputTokens counts output (completion) tokens. Its rules are delayed
	// by default: see Timing.
	OutputTokens
	// Cost counts money, in integer micro-units of a currency.
	Cost
)

var unitNames = [...]string{"requests", "tokens", "input_tokens", "output_tokens", "cost"}

// String returns the canonical name of u, as policy files spell it.
func (u Unit) String() string {
	if int(u) < len(unitNames) {
		return unitNames[u]
	}
	return "limiter.Unit(" + strconv.Itoa(int(u)) + ")"
}

// ParseUnit returns the Unit whose canonical name is s.
func ParseUnit(s string) (Unit, bool) {
	for i, n := range unitNames {
		if n == s {
			return Unit(i), true
		}
	}
	return 0, false
}

// Mode says whether a rule enforces.
type Mode uint8

const (
	// Enforce denies requests over the limit.
	Enforce Mode = iota
	// Shadow evaluates and reports the rule but never denies; a request
	// the rule would have denied is reported in Decision.ShadowDenied.
	Shadow
	// Off disables the rule: it matches nothing and charges nothing.
	Off
)

var modeNames = [...]string{"enforce", "shadow", "off"}

// String returns the canonical name of m.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "limiter.Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode returns the Mode whose canonical name is s.
func ParseMode(s string) (Mode, bool) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), true
		}
	}
	return 0, false
}

// Timing says when a rule is charged.
type Timing uint8

const (
	// TimingDefault is After for OutputTokens rules and Before otherwise.
	TimingDefault Timing = iota
	// Before charges at check time: the request's estimate is reserved,
	// and Settle corrects it to the measured usage.
	Before
	// After (delayed enforcement) charges at settle time, even past the
	// limit. At check time the rule only peeks: it denies when the counter
	// is already at or over the limit. The response that crosses the quota
	// completes; the next request is refused.
	After
)

// FailMode says what a rule does when the store cannot decide.
type FailMode uint8

const (
	// FailDefault uses the limiter's default (WithFailMode; FailAllow unless set).
	FailDefault FailMode = iota
	// FailAllow admits the request (fail open).
	FailAllow
	// FailDeny denies the request (fail closed); adapters answer 503 or
	// UNAVAILABLE rather than 429.
	FailDeny
	// FailLocal enforces the rule in the fallback store (WithFallback) with
	// its limit divided by the number of instances.
	FailLocal
)

var failNames = [...]string{"default", "allow", "deny", "local"}

// String returns the canonical name of f.
func (f FailMode) String() string {
	if int(f) < len(failNames) {
		return failNames[f]
	}
	return "limiter.FailMode(" + strconv.Itoa(int(f)) + ")"
}

// ParseFailMode returns the FailMode whose canonical name is s.
func ParseFailMode(s string) (FailMode, bool) {
	for i, n := range failNames {
		if n == s {
			return FailMode(i), true
		}
	}
	return 0, false
}

// Calendar aligns a fixed-window rule to calendar periods in a time zone
// instead of a fixed Period.
type Calendar uint8

const (
	// NoCalendar uses Period.
	NoCalendar Calendar = iota
	// Day windows start at local midnight.
	Day
	// Week windows start at local midnight on Monday.
	Week
	// Month windows start at local midnight on the first of the month.
	Month
)

// Rejection is how adapters answer a request a rule denied. The zero value
// lets the adapter choose (429 with a problem+json body for HTTP).
type Rejection struct {
	// Status is the HTTP status; 0 means 429.
	Status int
	// Body is sent as it is.
	Body []byte
	// ContentType of Body; empty means the adapter's default.
	ContentType string
	// Headers are added to the response.
	Headers map[string]string
}

// Rule is one limit. Rules are values: the limiter copies them.
type Rule struct {
	// Name identifies the rule in results, metrics and counter keys. It is
	// 1 to 128 characters of [A-Za-z0-9_.:/-].
	Name string
	// Algorithm; the zero Kind means algorithms.TokenBucket.
	Algorithm algorithms.Kind
	// Limit is the number of Units per Period (see package algorithms for
	// each algorithm's exact meaning), from 0 to algorithms.MaxLimit.
	Limit int64
	// Period is the window or refill period, from 1µs to 366 days. A
	// Concurrency rule uses it as the lease of an acquired slot. Ignored
	// when Calendar is set.
	Period time.Duration
	// Burst is the bucket capacity for TokenBucket and GCRA; 0 means Limit.
	Burst int64
	// Calendar aligns a FixedWindow rule to days, weeks or months in
	// Location (UTC when nil).
	Calendar Calendar
	// Location is the time zone of calendar windows.
	Location *time.Location
	// Unit is what the rule counts; the zero Unit is Requests.
	Unit Unit
	// By lists the dimensions that key the rule's counters: one counter
	// per distinct combination of values. A request that lacks one of them
	// does not match the rule. Empty means one counter for all requests.
	By []dimensions.Dimension
	// When restricts the rule to requests it matches; nil matches all.
	When Matcher
	// Mode: enforce (the zero value), shadow, or off.
	Mode Mode
	// Timing: when the rule is charged.
	Timing Timing
	// OnStoreError is the rule's fail mode.
	OnStoreError FailMode
	// Reject customizes the answer to a request this rule denied; nil uses
	// the adapter's default.
	Reject *Rejection
	// Guard, when set, makes the rule a guard: it counts nothing, and a
	// matching request for which Guard returns an error is denied before
	// any counter changes, with that error in RuleResult.Err. Model allow
	// and deny lists and per-request caps (maximum input or output tokens)
	// are guards. Algorithm, Limit, Period, Burst, Unit and Timing are
	// ignored.
	Guard func(r *Request) error
	// Thresholds are fractions of the rule's capacity (Limit, or Burst for
	// buckets), each in (0, 1]: when a charge takes a counter from below
	// one of them to at or above it, the limiter's threshold hook
	// (WithThresholdHook) is called, once per counter key and window.
	// Nil means 0.8 and 1.0; an empty, non-nil slice means none. Changing
	// them keeps the rule's counters.
	Thresholds []float64
}

// delayed reports whether the rule is charged at settle time.
func (r *Rule) delayed() bool {
	switch r.Timing {
	case After:
		return true
	case Before:
		return false
	}
	return r.Unit == OutputTokens
}

func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}

// params returns the algorithm parameters of a rule without a calendar.
func (r *Rule) params() algorithms.Params {
	kind := r.Algorithm
	if kind == 0 {
		kind = algorithms.TokenBucket
	}
	return algorithms.Params{Kind: kind, Limit: r.Limit, Period: r.Period.Microseconds(), Burst: r.Burst}
}

// Validate reports whether r can be used, naming the first problem.
func (r *Rule) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidRule, r.Name, fmt.Sprintf(format, args...))
	}
	if !validName(r.Name) {
		return bad("name must be 1 to 128 characters of [A-Za-z0-9_.:/-]")
	}
	if r.Unit > Cost {
		return bad("unknown unit %d", r.Unit)
	}
	if r.Mode > Off {
		return bad("unknown mode %d", r.Mode)
	}
	if r.Timing > After {
		return bad("unknown timing %d", r.Timing)
	}
	if r.OnStoreError > FailLocal {
		return bad("unknown fail mode %d", r.OnStoreError)
	}
	if r.Guard != nil {
		return nil
	}
	p := r.params()
	if r.Calendar != NoCalendar {
		if r.Calendar > Month {
			return bad("unknown calendar %d", r.Calendar)
		}
		if p.Kind != algorithms.FixedWindow {
			return bad("calendar windows need the fixed_window algorithm, not %s", p.Kind)
		}
		p.Period = 1 // any valid period; the real one is computed per window
	} else if r.Period%time.Microsecond != 0 {
		return bad("period %s is not a whole number of microseconds", r.Period)
	}
	if err := p.Validate(); err != nil {
		return bad("%v", err)
	}
	if p.Kind == algorithms.Concurrency && r.delayed() {
		return bad("a concurrency rule cannot be delayed")
	}
	for _, d := range r.By {
		if d == "" {
			return bad("empty dimension in by")
		}
	}
	for _, f := range r.Thresholds {
		if !(f > 0 && f <= 1) {
			return bad("threshold %v is not in (0, 1]", f)
		}
	}
	return nil
}

// fingerprint names the counter space of a rule: rules with the same name
// and parameters share counters (so they survive a rule replacement), and a
// rule whose parameters change starts afresh.
func (r *Rule) fingerprint() string {
	h := fnv.New64a()
	p := r.params()
	loc := ""
	if r.Location != nil {
		loc = r.Location.String()
	}
	fmt.Fprintf(h, "%d|%d|%d|%d|%d|%d|%s|%v", p.Kind, p.Limit, p.Period, p.Burst, r.Unit, r.Calendar, loc, r.By)
	return strconv.FormatUint(h.Sum64()&0xffffffff, 36)
}

// calendarWindow returns the parameters and start of the calendar window of
// r holding now (µs since the epoch).
func (r *Rule) calendarWindow(now int64) (algorithms.Params, int64) {
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	t := time.UnixMicro(now).In(loc)
	y, m, d := t.Date()
	var start, end time.Time
	switch r.Calendar {
	case Day:
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 0, 1)
	case Week:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-back, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 0, 7)
	default:
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 1, 0)
	}
	p := r.params()
	s := start.UnixMicro()
	p.Period = end.UnixMicro() - s
	p.Offset = s % p.Period
	return p, s
}
