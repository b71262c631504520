package limiter

import "github.com/tollgate-go/tollgate/dimensions"

// Matcher decides whether a rule applies to a request. Implementations must
// be safe for concurrent use and should not allocate.
type Matcher interface {
	Match(r *Request) bool
}

// MatchFunc adapts a function to a Matcher.
type MatchFunc func(r *Request) bool

// Match calls f(r).
func (f MatchFunc) Match(r *Request) bool { return f(r) }

// IndexedMatcher is a Matcher that only matches requests whose dimension D
// has the value V (and then whatever Match adds). The limiter indexes such
// rules, so that matching stays cheap with many rules.
type IndexedMatcher interface {
	Matcher
	// IndexKey returns the dimension and the value it must have.
	IndexKey() (d dimensions.Dimension, v string)
}

// SetIndexedMatcher is a Matcher that only matches requests whose dimension
// D has one of the values Vs (and then whatever Match adds). The limiter
// indexes such rules under each value.
type SetIndexedMatcher interface {
	Matcher
	// IndexKeys returns the dimension and the values it may have.
	IndexKeys() (d dimensions.Dimension, vs []string)
}

// In returns a Matcher, indexed by the limiter, for requests whose
// dimension d is one of values: the compiled form of
// `request.model in ["a", "b"]`.
func In(d dimensions.Dimension, values ...string) SetIndexedMatcher {
	set := make(map[string]struct{}, len(values))
	for _, v := range values {
		set[v] = struct{}{}
	}
	return in{d: d, values: append([]string(nil), values...), set: set}
}

type in struct {
	d      dimensions.Dimension
	values []string
	set    map[string]struct{}
}

func (x in) Match(r *Request) bool {
	v, _ := r.Get(x.d)
	_, ok := x.set[v]
	return ok
}

func (x in) IndexKeys() (dimensions.Dimension, []string) { return x.d, x.values }

// Equal returns a Matcher, indexed by the limiter, for requests whose
// dimension d equals v.
func Equal(d dimensions.Dimension, v string) IndexedMatcher {
	return equal{d, v}
}

type equal struct {
	d dimensions.Dimension
	v string
}

func (e equal) Match(r *Request) bool {
	got, _ := r.Get(e.d)
	return got == e.v
}

func (e equal) IndexKey() (dimensions.Dimension, string) { return e.d, e.v }

// Indexed returns a Matcher, indexed by the limiter on d == v, that also
// requires m to match. Use it for predicates such as
// `request.model == "gpt-4" && request.user != "ops"`.
func Indexed(d dimensions.Dimension, v string, m Matcher) IndexedMatcher {
	return indexed{equal{d, v}, m}
}

type indexed struct {
	equal
	m Matcher
}

func (x indexed) Match(r *Request) bool { return x.equal.Match(r) && x.m.Match(r) }
