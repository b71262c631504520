package policy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

//go:embed schema/tollgate.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of policy documents: a
// copy of policy/schema/tollgate.schema.json, which Load validates
// against. Editors that understand JSON Schema validate and complete
// policy files with that file: name it in a `"$schema"` field of a JSON
// document, or in a `# yaml-language-server: $schema=<...>` first line of
// a YAML one.
func Schema() []byte { return bytes.Clone(schemaJSON) }

const schemaURL = "https://raw.githubusercontent.com/tollgate-go/tollgate/main/policy/schema/tollgate.schema.json"

// compiledSchema holds the schema compiled once, on first use; it is
// read-only afterwards.
var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource(schemaURL, bytes.NewReader(schemaJSON)); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
})

// schemaFields returns, for each object definition of the schema ("" for
// the document itself, else the name under $defs), its property names.
var schemaFields = sync.OnceValue(func() map[string][]string {
	var raw struct {
		Properties map[string]json.RawMessage                                 `json:"properties"`
		Defs       map[string]struct{ Properties map[string]json.RawMessage } `json:"$defs"`
	}
	if err := json.Unmarshal(schemaJSON, &raw); err != nil {
		panic("policy: embedded schema: " + err.Error()) // the test suite loads it
	}
	out := map[string][]string{"": keys(raw.Properties)}
	for name, d := range raw.Defs {
		if len(d.Properties) > 0 {
			out[name] = keys(d.Properties)
		}
	}
	return out
})

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// objectKind names the schema definition of the object at a document path.
func objectKind(path string) string {
	var parts []string
	for _, p := range strings.Split(path, "/")[1:] {
		if _, err := strconv.Atoi(p); err != nil {
			parts = append(parts, p)
		}
	}
	joined := strings.Join(parts, "/")
	if strings.HasPrefix(joined, "prices/models/") && strings.Count(joined, "/") == 2 {
		return "price"
	}
	switch joined {
	case "prices":
		return "prices"
	case "":
		return ""
	case "defaults", "overrides", "groups/defaults", "groups/overrides":
		return "settings"
	case "rules", "groups/rules":
		return "rule"
	case "groups":
		return "group"
	case "models":
		return "model"
	case "models/rate_limit":
		return "rate_limit"
	}
	if strings.HasSuffix(joined, "reject") {
		return "reject"
	}
	return "?"
}

// lastField returns the last non-index token of a path: "by" for
// "/rules/0/by/2".
func lastField(path string) string {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if _, err := strconv.Atoi(parts[i]); err != nil {
			return parts[i]
		}
	}
	return ""
}

// at returns the value at a JSON pointer in a decoded document.
func at(doc any, path string) any {
	if path == "" {
		return doc
	}
	for _, tok := range strings.Split(path, "/")[1:] {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch v := doc.(type) {
		case map[string]any:
			doc = v[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}

// validateSchema checks doc against the schema and reports each failure
// as an *Error with the best explanation this package has for it.
func validateSchema(doc any, attrs []string, p *problems) {
	s, err := compiledSchema()
	if err != nil {
		p.add("", nil, "", "embedded schema: %v", err)
		return
	}
	err = s.Validate(doc)
	var ve *jsonschema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		if err != nil {
			p.add("", nil, "", "%v", err)
		}
		return
	}
	var leaves []*jsonschema.ValidationError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	// One error per path: several failing keywords at one value explain
	// the same mistake.
	seen := map[string]bool{}
	for _, leaf := range leaves {
		for _, e := range explainSchemaError(doc, leaf, attrs) {
			k := e.Path
			if strings.HasPrefix(e.Message, "missing required field") {
				k += "\x00" + e.Message
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			p.addErr(e)
		}
	}
}

var quoted = regexp.MustCompile(`'([^']*)'`)

func explainSchemaError(doc any, leaf *jsonschema.ValidationError, attrs []string) []*Error {
	path := leaf.InstanceLocation
	value := at(doc, path)
	kw := leaf.KeywordLocation[strings.LastIndexByte(leaf.KeywordLocation, '/')+1:]
	field := lastField(path)
	switch kw {
	case "additionalProperties":
		var out []*Error
		allowed := schemaFields()[objectKind(path)]
		for _, m := range quoted.FindAllStringSubmatch(leaf.Message, -1) {
			name := m[1]
			out = append(out, &Error{
				Path:       pointer(path, name),
				Value:      at(doc, pointer(path, name)),
				Message:    fmt.Sprintf("unknown field %q (fields here: %s)", name, strings.Join(allowed, ", ")),
				Suggestion: closest(name, allowed),
			})
		}
		return out
	case "required":
		var out []*Error
		for _, m := range quoted.FindAllStringSubmatch(leaf.Message, -1) {
			out = append(out, &Error{Path: path, Message: fmt.Sprintf("missing required field %q", m[1])})
		}
		return out
	case "enum", "pattern":
		if objectKind(strings.TrimSuffix(path, "/"+field)) == "price" {
			return []*Error{priceError(path, value)}
		}
		if b, ok := value.(bool); ok && (field == "mode" || field == "on_store_error") {
			return []*Error{boolModeError(path, field, b)}
		}
		if s, ok := value.(string); ok {
			if e := explainValue(field, s, attrs); e != nil {
				e.Path = path
				return []*Error{e}
			}
		}
	case "type":
		if b, ok := value.(bool); ok && (field == "mode" || field == "on_store_error") {
			return []*Error{boolModeError(path, field, b)}
		}
		if n, ok := value.(json.Number); ok && field == "limit" {
			return []*Error{limitNumberError(path, n)}
		}
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		if objectKind(strings.TrimSuffix(path, "/"+field)) == "price" {
			return []*Error{priceError(path, value)}
		}
		if n, ok := value.(json.Number); ok {
			return []*Error{rangeError(path, field, n)}
		}
	case "const":
		if value == nil && path == "" {
			break
		}
		if field == "version" {
			return []*Error{{Path: path, Value: value, Message: fmt.Sprintf("version %s is not supported: the only version is 1", jsonText(value))}}
		}
	case "minProperties":
		return []*Error{{Path: path, Message: "rate_limit is empty: give at least one of rps, rpm, rph, rpd, tps, tpm, tph, tpd"}}
	case "uniqueItems":
		return []*Error{{Path: path, Value: value, Message: fmt.Sprintf("%s lists a value twice", field)}}
	}
	msg := leaf.Message
	if value == nil && path == "" {
		msg = "the document is empty"
	} else if value != nil {
		msg = fmt.Sprintf("%s: %s", jsonText(value), msg)
	}
	return []*Error{{Path: path, Value: value, Message: msg}}
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		return fmt.Sprintf("%T", v)
	}
	return string(b)
}

func limitNumberError(path string, n json.Number) *Error {
	return &Error{Path: path, Value: n, Message: fmt.Sprintf("limit %s has no period: write a rate such as \"%s/m\", or set calendar (day, week, month) for a count per calendar period", n, n)}
}

func rangeError(path, field string, n json.Number) *Error {
	e := &Error{Path: path, Value: n}
	switch field {
	case "share":
		e.Message = fmt.Sprintf("share %s is outside (0, 1]: it is the fraction of the parent's limit", n)
	case "thresholds":
		e.Message = fmt.Sprintf("threshold %s is outside (0, 1]: it is a fraction of the limit, such as 0.8", n)
	case "status":
		e.Message = fmt.Sprintf("status %s is not a rejection status: use 400 to 599 (usually 429)", n)
	case "limit":
		if strings.HasPrefix(n.String(), "-") {
			e.Message = fmt.Sprintf("limit %s is negative", n)
		} else {
			e.Message = fmt.Sprintf("limit %s is over the largest, 2^53 = 9007199254740992", n)
		}
	default:
		if strings.HasPrefix(n.String(), "-") {
			e.Message = fmt.Sprintf("%s %s is negative", field, n)
		} else if n.String() == "0" {
			e.Message = fmt.Sprintf("%s %s must be at least 1", field, n)
		} else {
			e.Message = fmt.Sprintf("%s %s is over the largest, 2^53 = 9007199254740992", field, n)
		}
	}
	return e
}

// boolModeError explains `mode: off` read by YAML 1.1 as false.
func boolModeError(path, field string, b bool) *Error {
	word := "off"
	if b {
		word = "on"
	}
	if field != "mode" {
		return &Error{Path: path, Value: b, Message: fmt.Sprintf("%s is the boolean %v (YAML reads unquoted on, off, yes and no as booleans): want %s", field, b, oneOf(failNames))}
	}
	return &Error{Path: path, Value: b, Suggestion: word,
		Message: fmt.Sprintf("%s is the boolean %v: YAML reads an unquoted %s as a boolean, so quote it", field, b, word)}
}

func priceError(path string, value any) *Error {
	return &Error{Path: path, Value: value, Message: fmt.Sprintf("price %s is not a non-negative decimal with at most six decimals (units of currency per 1M tokens)", jsonText(value))}
}
