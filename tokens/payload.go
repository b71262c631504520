package tokens

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// PayloadTokens estimates, with e (Heuristic when nil), the tokens of the
// content an MCP or A2A message carries to a model, for a by_tokens limit:
//
//   - MCP tools/call result: the text items of content (and the text of
//     embedded resources), plus structuredContent serialized compactly,
//     unless a text item already holds the same JSON (then it is counted
//     once);
//   - MCP prompts/get result: the text of each message's content;
//   - MCP resources/read result: the text of each resource;
//   - A2A message/send and message/stream requests, Message and Task
//     results, status and artifact updates: text parts, and data parts
//     serialized compactly.
//
// Images, audio, blobs and resource links are not counted. body is one
// JSON-RPC message, a JSON-RPC batch (array), or an SSE stream of messages
// (MCP Streamable HTTP); notifications and errors count 0. A body that is
// none of these returns ErrMalformedPayload.
func PayloadTokens(body []byte, e Estimator) (int64, error) {
	if e == nil {
		e = Heuristic{}
	}
	c := counter{e: e}
	b := bytes.TrimSpace(bytes.TrimPrefix(body, bom))
	if len(b) == 0 {
		return 0, ErrMalformedPayload
	}
	switch b[0] {
	case '{':
		if !c.rpc(b) {
			return 0, ErrMalformedPayload
		}
	case '[':
		if !eachElement(b, func(m []byte) { c.rpc(m) }) {
			return 0, ErrMalformedPayload
		}
	default:
		events, valid := 0, 0
		f := sseFramer{max: len(body) + 1, onEvent: func(data []byte) {
			events++
			if c.rpc(data) {
				valid++
			}
		}}
		f.write(body)
		f.write([]byte("\n\n")) // a body handed over whole is complete
		if events == 0 || valid == 0 {
			return 0, ErrMalformedPayload
		}
	}
	return c.tokens, nil
}

// rpc counts one JSON-RPC message; it reports whether msg was a JSON object.
func (c *counter) rpc(msg []byte) bool {
	var result, params []byte
	ok := eachMember(msg, func(k, v []byte) {
		switch string(k) {
		case "result":
			result = v
		case "params":
			params = v
		}
	})
	if !ok {
		return false
	}
	c.payload(result, 0)
	c.payload(params, 0)
	return true
}

// payload counts the result or params of a JSON-RPC message: the union of
// MCP tools/call, prompts/get and resources/read results and A2A messages,
// tasks and stream events (0.3 and 1.0 shapes).
func (c *counter) payload(raw []byte, depth int) {
	if isNull(raw) || depth > 3 {
		return
	}
	var content, structured, artifacts []byte
	var lists [3][]byte
	var nested [4][]byte
	ok := eachMember(raw, func(k, v []byte) {
		switch string(k) {
		case "content":
			content = v
		case "structuredContent":
			structured = v
		case "messages":
			lists[0] = v
		case "contents":
			lists[1] = v
		case "parts":
			lists[2] = v
		case "artifacts":
			artifacts = v
		case "message":
			nested[0] = v
		case "artifact":
			nested[1] = v
		case "status":
			nested[2] = v
		case "task":
			nested[3] = v
		}
	})
	if !ok {
		return
	}
	var texts []string
	eachElement(content, func(item []byte) {
		if t, ok := member(item, "text"); ok && !isNull(structured) {
			if s, ok := jsonString(t); ok {
				texts = append(texts, s)
			}
		}
		c.content(item, 1)
	})
	if !isNull(structured) && !duplicated(structured, texts) {
		c.compactJSON(structured)
	}
	for _, l := range lists {
		eachElement(l, func(item []byte) { c.content(item, 1) })
	}
	eachElement(artifacts, func(a []byte) { c.payload(a, depth+1) })
	for _, n := range nested {
		c.payload(n, depth+1)
	}
}

// duplicated reports whether one of texts is the JSON of structured.
// Only texts that start like JSON are decoded.
func duplicated(structured []byte, texts []string) bool {
	var want any
	decoded := false
	for _, t := range texts {
		t = strings.TrimSpace(t)
		if t == "" || (t[0] != '{' && t[0] != '[') {
			continue
		}
		if !decoded {
			if json.Unmarshal(structured, &want) != nil {
				return false
			}
			decoded = true
		}
		var got any
		if json.Unmarshal([]byte(t), &got) == nil && reflect.DeepEqual(got, want) {
			return true
		}
	}
	return false
}
