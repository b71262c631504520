package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-go/tollgate/dimensions"
)

// The canonical names of enumerated fields, as the schema lists them.
var (
	algorithmNames = []string{"fixed_window", "sliding_window", "token_bucket", "gcra", "concurrency"}
	unitNames      = []string{"requests", "tokens", "input_tokens", "output_tokens", "cost"}
	modeNames      = []string{"enforce", "shadow", "off"}
	failNames      = []string{"allow", "deny", "local"}
	timingNames    = []string{"before", "after"}
	calendarNames  = []string{"day", "week", "month"}
)

// enumNoun names what each enumerated field holds, for messages.
var enumNoun = map[string]struct {
	noun  string
	names []string
}{
	"algorithm":      {"an algorithm", algorithmNames},
	"unit":           {"a unit", unitNames},
	"mode":           {"a mode", modeNames},
	"on_store_error": {"a store-error mode", failNames},
	"timing":         {"a timing", timingNames},
	"calendar":       {"a calendar period", calendarNames},
}

// reservedAttributes cannot be declared as custom attributes: they are
// predefined dimensions or other request fields predicates read.
var reservedAttributes = []string{"method", "headers"}

func predefinedNames() []string {
	out := make([]string, len(dimensions.Predefined))
	for i, d := range dimensions.Predefined {
		out[i] = string(d)
	}
	return out
}

// explainValue returns the error for a string value that the schema
// refused for field (an enum or a pattern), or nil when it has nothing
// better to say than the schema.
func explainValue(field, s string, attrs []string) *Error {
	if e, ok := enumNoun[field]; ok {
		if slices.Contains(e.names, s) {
			return nil
		}
		sug := closest(s, e.names)
		if sug == "" && strings.ToLower(s) != s {
			if c := strings.ToLower(s); slices.Contains(e.names, c) {
				sug = c
			}
		}
		return &Error{Value: s, Message: fmt.Sprintf("%q is not %s (want %s)", s, e.noun, oneOf(e.names)), Suggestion: sug}
	}
	switch field {
	case "limit":
		if _, e := parseRate(s); e != nil {
			return e
		}
	case "name", "parent":
		return &Error{Value: s, Message: fmt.Sprintf("%q is not a rule name: names are 1 to 128 characters of A-Z a-z 0-9 _ . : / -", s), Suggestion: sanitizeName(s)}
	case "by":
		return dimensionError(s, attrs)
	case "attributes":
		return &Error{Value: s, Message: fmt.Sprintf("%q is not an attribute name: lower-case letters, digits and _, starting with a letter", s), Suggestion: strings.ToLower(strings.NewReplacer("-", "_", ".", "_", " ", "_").Replace(s))}
	}
	return nil
}

// dimensionError explains a by entry that names no dimension.
func dimensionError(s string, attrs []string) *Error {
	known := append(predefinedNames(), attrs...)
	msg := fmt.Sprintf("%q is not a dimension (want %s, or declare it under attributes)", s, oneOf(known))
	return &Error{Value: s, Message: msg, Suggestion: closest(s, known)}
}

// sanitizeName turns s into a valid rule name, or "" when nothing is left.
func sanitizeName(s string) string {
	b := []byte(s)
	n := 0
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == ':', c == '/', c == '-':
			b[n] = c
		case c == ' ':
			b[n] = '-'
		default:
			b[n] = '_'
		}
		n++
	}
	if n > 128 {
		n = 128
	}
	return string(b[:n])
}
