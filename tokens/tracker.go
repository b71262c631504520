package tokens

import (
	"bytes"
	"encoding/json"
)

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

// wireEvent is decoded from documents that the byte scan let through.
type wireEvent struct {
	Type       json.RawMessage `json:"type"`
	Error      json.RawMessage `json:"error"`
	Usage      json.RawMessage `json:"usage"`
	UsageMeta  json.RawMessage `json:"usageMetadata"`
	Message    json.RawMessage `json:"message"`
	Response   json.RawMessage `json:"response"`
	PromptEval json.RawMessage `json:"prompt_eval_count"`
	Eval       json.RawMessage `json:"eval_count"`
}

// tracker keeps the last usage snapshot of one response.
type tracker struct {
	snap     snapshot
	ok       bool // snap holds a snapshot
	sawError bool // an error body or error event was seen
}

// applyJSON decodes one complete JSON document and applies it. Documents
// that cannot be decoded are ignored.
func (t *tracker) applyJSON(doc []byte) {
	var w wireEvent
	if json.Unmarshal(doc, &w) != nil {
		return
	}
	t.apply(&members{
		typ: w.Type, err: w.Error, usage: w.Usage, usageMeta: w.UsageMeta,
		message: w.Message, response: w.Response, promptEval: w.PromptEval, eval: w.Eval,
	})
}

func typeIs(raw []byte, s string) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == len(s)+2 && raw[0] == '"' && string(raw[1:len(raw)-1]) == s
}

func typeHasPrefix(raw []byte, s string) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > len(s)+1 && raw[0] == '"' && bytes.HasPrefix(raw[1:], []byte(s))
}

// apply applies one document. Snapshots replace the previous one (they are
// cumulative), except Anthropic message_delta, which overwrites field by
// field. Errors never erase a snapshot already seen.
func (t *tracker) apply(m *members) {
	if (m.err != nil && !isNull(m.err)) || typeIs(m.typ, "error") || typeIs(m.typ, "response.failed") {
		t.sawError = true
	}
	switch {
	case typeIs(m.typ, "message_start"):
		var msg struct {
			Usage json.RawMessage `json:"usage"`
		}
		if json.Unmarshal(m.message, &msg) == nil {
			if s, ok := decodeUsage(msg.Usage); ok {
				t.snap, t.ok = s, true
			}
		}
		return
	case typeIs(m.typ, "message_delta"):
		if s, ok := decodeUsage(m.usage); ok {
			t.snap.merge(&s)
			t.ok = true
		}
		return
	case typeHasPrefix(m.typ, "response.") && m.response != nil:
		var resp struct {
			Usage json.RawMessage `json:"usage"`
		}
		if json.Unmarshal(m.response, &resp) == nil {
			if s, ok := decodeUsage(resp.Usage); ok {
				t.snap, t.ok = s, true
			}
		}
		return
	}
	if s, ok := decodeUsage(m.usage); ok {
		t.snap, t.ok = s, true
	}
	if s, ok := decodeGemini(m.usageMeta); ok {
		t.snap, t.ok = s, true
	}
	if m.promptEval != nil || m.eval != nil {
		if s, ok := decodeOllama(m.promptEval, m.eval); ok {
			t.snap, t.ok = s, true
		}
	}
}

func (t *tracker) usage() (Usage, bool) {
	if !t.ok {
		return Usage{}, false
	}
	return t.snap.usage(), true
}

var (
	markUsage = []byte("usage")
	markError = []byte(`"error"`)
	markEval  = []byte(`eval_count"`)
)

// mayCarryUsage is the cheap byte scan run on every document before any JSON
// decoding: it reports whether doc can carry a usage snapshot or an error.
// It has false positives (text that mentions a key), never false negatives
// for well-formed JSON; it allocates nothing.
func mayCarryUsage(doc []byte) bool {
	return hasNonNullMember(doc, markUsage, true) ||
		hasNonNullMember(doc, markError, false) ||
		bytes.Contains(doc, markEval)
}

// hasNonNullMember reports whether mark occurs in doc other than as a key
// whose value is null. With open, mark lacks its closing quote, so that
// "usageMetadata" matches "usage" too.
func hasNonNullMember(doc, mark []byte, open bool) bool {
	for {
		i := bytes.Index(doc, mark)
		if i < 0 {
			return false
		}
		rest := doc[i+len(mark):]
		doc = rest
		if open {
			if len(rest) == 0 || rest[0] != '"' {
				return true
			}
			rest = rest[1:]
		}
		rest = skipSpace(rest)
		if len(rest) == 0 || rest[0] != ':' {
			return true
		}
		rest = skipSpace(rest[1:])
		if !bytes.HasPrefix(rest, []byte("null")) {
			return true
		}
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
