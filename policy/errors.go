package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every *Error, so errors.Is(err, ErrInvalid)
// tells a document that was refused from one that could not be read.
var ErrInvalid = errors.New("policy: invalid document")

// Error is one problem in a policy document. Load returns every problem it
// finds, joined with errors.Join; use errors.As to get the first, or
// Errors to get all of them.
type Error struct {
	// Path is the JSON pointer (RFC 6901) of the offending value, such as
	// "/rules/3/limit". The empty string is the whole document.
	Path string
	// Value is the offending value as decoded from JSON, or nil when the
	// problem is a missing value.
	Value any
	// Message says what is wrong, in a sentence without a final period.
	Message string
	// Suggestion is a corrected value the author probably meant, or empty.
	Suggestion string
}

// Error formats the problem as
// `policy: /rules/3/limit: "60/hour" is not a rate; did you mean "60/h"?`;
// a problem of the whole document has no path part.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.Suggestion != "" {
		b.WriteString("; did you mean ")
		b.WriteString(strconv.Quote(e.Suggestion))
		b.WriteString("?")
	}
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors returns every *Error in err, which may be joined or wrapped, in
// order. It returns nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// problems collects the errors of one load.
type problems struct {
	list []*Error
}

func (p *problems) add(path string, value any, suggestion, format string, args ...any) {
	p.list = append(p.list, &Error{Path: path, Value: value, Message: fmt.Sprintf(format, args...), Suggestion: suggestion})
}

func (p *problems) addErr(e *Error) { p.list = append(p.list, e) }

// covered reports whether a problem at path is already reported: at the
// same path, or at a path inside or around it (but not at the document
// root, which says nothing about the rest).
func covered(reported []*Error, path string) bool {
	for _, e := range reported {
		if e.Path == "" {
			continue
		}
		if e.Path == path || strings.HasPrefix(path, e.Path+"/") || strings.HasPrefix(e.Path, path+"/") {
			return true
		}
	}
	return false
}

// err returns the collected problems joined, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *Error) int { return comparePaths(a.Path, b.Path) })
	errs := make([]error, len(p.list))
	for i, e := range p.list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// pointer appends JSON pointer tokens to base, escaping "~" and "/".
func pointer(base string, tokens ...any) string {
	var b strings.Builder
	b.WriteString(base)
	for _, t := range tokens {
		b.WriteByte('/')
		switch t := t.(type) {
		case int:
			b.WriteString(strconv.Itoa(t))
		case string:
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
		}
	}
	return b.String()
}

// closest returns the candidate nearest to s by edit distance, when it is
// near enough to be a plausible typo, or "".
func closest(s string, candidates []string) string {
	best, bestDist := "", -1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 {
		return ""
	}
	// One edit per four letters of the longer word, at least one:
	// "token_buket" is a typo of "token_bucket", "code" is not "body".
	limit := max(1, (max(len(s), len(best))+3)/4)
	if bestDist > limit || bestDist >= len(best) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein plus adjacent transpositions), on bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// oneOf formats candidates as "a, b or c".
func oneOf(candidates []string) string {
	c := slices.Clone(candidates)
	switch len(c) {
	case 0:
		return ""
	case 1:
		return c[0]
	}
	return strings.Join(c[:len(c)-1], ", ") + " or " + c[len(c)-1]
}

// comparePaths orders JSON pointers token by token: array indices
// numerically (document order), object fields by name (the document's
// own order is lost when YAML becomes JSON).
func comparePaths(a, b string) int {
	at, bt := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(at) && i < len(bt); i++ {
		if at[i] == bt[i] {
			continue
		}
		x, errx := strconv.Atoi(at[i])
		y, erry := strconv.Atoi(bt[i])
		if errx == nil && erry == nil {
			return x - y
		}
		return strings.Compare(at[i], bt[i])
	}
	return len(at) - len(bt)
}
