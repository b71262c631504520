package tokens

import "bytes"

// members holds the raw top-level members of one JSON document (an SSE
// event's data, an NDJSON line, a JSON body) that can carry usage. A nil
// slice means the member was absent.
type members struct {
	typ        []byte // "type", a JSON string
	err        []byte // "error"
	usage      []byte // "usage"
	usageMeta  []byte // "usageMetadata" (Gemini)
	message    []byte // "message" (Anthropic message_start)
	response   []byte // "response" (Responses API events)
	promptEval []byte // "prompt_eval_count" (Ollama)
	eval       []byte // "eval_count" (Ollama)
}

// tracker keeps the last usage snapshot of one response.
type tracker struct {
	snap     snapshot
	ok       bool // snap holds a snapshot
	sawError bool // an error body or error event was seen
}

// applyJSON reads one complete JSON document and applies it. Documents
// that are not well-formed objects are ignored.
func (t *tracker) applyJSON(doc []byte) {
	if m, ok := readMembers(doc); ok {
		t.apply(&m)
	}
}

// readMembers reads the members of a JSON document that can carry usage;
// ok is false when doc is not one well-formed object.
func readMembers(doc []byte) (m members, ok bool) {
	ok = eachMember(doc, func(k, v []byte) {
		switch string(k) {
		case "type":
			m.typ = v
		case "error":
			m.err = v
		case "usage":
			m.usage = v
		case "usageMetadata":
			m.usageMeta = v
		case "message":
			m.message = v
		case "response":
			m.response = v
		case "prompt_eval_count":
			m.promptEval = v
		case "eval_count":
			m.eval = v
		}
	})
	return m, ok
}

func typeIs(raw []byte, s string) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == len(s)+2 && raw[0] == '"' && string(raw[1:len(raw)-1]) == s
}

func typeHasPrefix(raw []byte, s string) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > len(s)+1 && raw[0] == '"' && bytes.HasPrefix(raw[1:], []byte(s))
}

// Effects of one document on the snapshot.
const (
	effNone    = iota // no valid usage
	effReplace        // a cumulative snapshot: replaces the previous one
	effMerge          // Anthropic message_delta: overwrites the fields it carries
)

// apply applies one document. Snapshots replace the previous one (they are
// cumulative), except Anthropic message_delta, which overwrites field by
// field. Errors never erase a snapshot already seen.
func (t *tracker) apply(m *members) {
	kind, s, isErr := classify(m)
	t.applyEffect(kind, &s, isErr)
}

func (t *tracker) applyEffect(kind int, s *snapshot, isErr bool) {
	if isErr {
		t.sawError = true
	}
	switch kind {
	case effReplace:
		t.snap, t.ok = *s, true
	case effMerge:
		t.snap.merge(s)
		t.ok = true
	}
}

// classify returns what one document does to a tracker: its effect on the
// snapshot, the snapshot it carries, and whether it marks an error.
func classify(m *members) (kind int, s snapshot, isErr bool) {
	isErr = (m.err != nil && !isNull(m.err)) || typeIs(m.typ, "error") || typeIs(m.typ, "response.failed")
	switch {
	case typeIs(m.typ, "message_start"):
		if u, ok := member(m.message, "usage"); ok {
			if s, ok := decodeUsage(u); ok {
				return effReplace, s, isErr
			}
		}
		return effNone, snapshot{}, isErr
	case typeIs(m.typ, "message_delta"):
		if s, ok := decodeUsage(m.usage); ok {
			return effMerge, s, isErr
		}
		return effNone, snapshot{}, isErr
	case typeHasPrefix(m.typ, "response.") && m.response != nil:
		if u, ok := member(m.response, "usage"); ok {
			if s, ok := decodeUsage(u); ok {
				return effReplace, s, isErr
			}
		}
		return effNone, snapshot{}, isErr
	}
	if u, ok := decodeUsage(m.usage); ok {
		kind, s = effReplace, u
	}
	if u, ok := decodeGemini(m.usageMeta); ok {
		kind, s = effReplace, u
	}
	if m.promptEval != nil || m.eval != nil {
		if u, ok := decodeOllama(m.promptEval, m.eval); ok {
			kind, s = effReplace, u
		}
	}
	return kind, s, isErr
}

func (t *tracker) usage() (Usage, bool) {
	if !t.ok {
		return Usage{}, false
	}
	return t.snap.usage(), true
}

var markUsage = []byte("usage")

// mayCarryUsage is the cheap byte scan run on every SSE event before any
// JSON is read: it reports whether doc mentions "usage" (which also matches
// "usageMetadata") other than as a member whose value is null. It has false
// positives (text that mentions the word), never false negatives for
// well-formed JSON; it allocates nothing.
func mayCarryUsage(doc []byte) bool {
	return hasNonNullMember(doc, markUsage, true)
}

// looksLikeError reports whether doc's first member marks an error event:
// {"error": non-null} (OpenAI, vLLM, Gemini, Ollama), {"type":"error"}
// (Anthropic, Responses) or {"object":"error"} (older vLLM). Only the first
// member is looked at, so the check costs a few bytes.
func looksLikeError(doc []byte) bool {
	doc = skipSpace(doc)
	if len(doc) < 2 || doc[0] != '{' {
		return false
	}
	doc = skipSpace(doc[1:])
	// Every key starts with a quote and a letter; most documents start with
	// another key, which the second byte tells at once.
	if len(doc) < 2 || doc[0] != '"' || (doc[1] != 'e' && doc[1] != 't' && doc[1] != 'o') {
		return false
	}
	// The three keys start with different letters.
	k := `"error"`
	switch doc[1] {
	case 't':
		k = `"type"`
	case 'o':
		k = `"object"`
	}
	if len(doc) < len(k) || string(doc[:len(k)]) != k {
		return false
	}
	rest := skipSpace(doc[len(k):])
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	rest = skipSpace(rest[1:])
	if doc[1] == 'e' {
		return len(rest) > 0 && !bytes.HasPrefix(rest, []byte("null"))
	}
	return bytes.HasPrefix(rest, []byte(`"error"`))
}

// hasNonNullMember reports whether mark occurs in doc other than as a key
// whose value is null. With open, mark lacks its closing quote, so that
// "usageMetadata" matches "usage" too.
func hasNonNullMember(doc, mark []byte, open bool) bool {
	for {
		i := indexMark(doc, mark)
		if i < 0 {
			return false
		}
		rest := doc[i+len(mark):]
		doc = rest
		if open {
			if nonNullAfter(rest) {
				return true
			}
			continue
		}
		if nonNullValue(rest) {
			return true
		}
	}
}

// nonNullAfter reports whether rest, which follows an open "usage" mark,
// is not the end of a key whose value is null.
func nonNullAfter(rest []byte) bool {
	if len(rest) == 0 || rest[0] != '"' {
		return true
	}
	return nonNullValue(rest[1:])
}

// nonNullValue reports whether rest, which follows a key, is not a colon
// and a null value.
func nonNullValue(rest []byte) bool {
	rest = skipSpace(rest)
	if len(rest) == 0 || rest[0] != ':' {
		return true
	}
	rest = skipSpace(rest[1:])
	return !bytes.HasPrefix(rest, []byte("null"))
}

// indexMark is bytes.Index(doc, mark) for the "usage" mark, anchored on its
// rarest letter: 'g' occurs about half as often as 'u' in JSON text, and
// each occurrence of the anchor costs a call to bytes.IndexByte.
func indexMark(doc, mark []byte) int {
	if string(mark) != "usage" {
		return bytes.Index(doc, mark)
	}
	const g = 3 // offset of 'g' in "usage"
	if len(doc) < len("usage") {
		return -1
	}
	end := len(doc) - 1 // 'g' is followed by 'e'
	for i := g; i < end; {
		j := bytes.IndexByte(doc[i:end], 'g')
		if j < 0 {
			return -1
		}
		i += j
		if doc[i+1] == 'e' && doc[i-1] == 'a' && doc[i-2] == 's' && doc[i-3] == 'u' {
			return i - g
		}
		i++
	}
	return -1
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
