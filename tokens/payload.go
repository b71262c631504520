package tokens

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// wireRPC is the union of the JSON-RPC messages whose content reaches a
// model: MCP tools/call, prompts/get and resources/read results, and A2A
// requests, results and stream events (0.3 and 1.0 shapes).
type wireRPC struct {
	Result json.RawMessage `json:"result"`
	Params json.RawMessage `json:"params"`
}

type wirePayload struct {
	Content           []json.RawMessage `json:"content"`
	StructuredContent json.RawMessage   `json:"structuredContent"`
	Messages          []json.RawMessage `json:"messages"`
	Contents          []json.RawMessage `json:"contents"`
	Parts             []json.RawMessage `json:"parts"`
	Message           json.RawMessage   `json:"message"`
	Artifacts         []json.RawMessage `json:"artifacts"`
	Artifact          json.RawMessage   `json:"artifact"`
	Status            json.RawMessage   `json:"status"`
	Task              json.RawMessage   `json:"task"`
}

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
		var batch []json.RawMessage
		if json.Unmarshal(b, &batch) != nil {
			return 0, ErrMalformedPayload
		}
		for _, m := range batch {
			c.rpc(m)
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
	var m wireRPC
	if json.Unmarshal(msg, &m) != nil {
		return false
	}
	c.payload(m.Result, 0)
	c.payload(m.Params, 0)
	return true
}

func (c *counter) payload(raw json.RawMessage, depth int) {
	if isNull(raw) || depth > 3 {
		return
	}
	var p wirePayload
	if json.Unmarshal(raw, &p) != nil {
		return
	}
	var texts []string
	for _, item := range p.Content {
		var it struct {
			Text json.RawMessage `json:"text"`
		}
		if json.Unmarshal(item, &it) == nil {
			if s, ok := jsonString(it.Text); ok {
				texts = append(texts, s)
			}
		}
		c.content(item, 1)
	}
	if !isNull(p.StructuredContent) && !duplicated(p.StructuredContent, texts) {
		c.compactJSON(p.StructuredContent)
	}
	for _, list := range [][]json.RawMessage{p.Messages, p.Contents, p.Parts} {
		for _, item := range list {
			c.content(item, 1)
		}
	}
	for _, a := range p.Artifacts {
		c.payload(a, depth+1)
	}
	for _, nested := range []json.RawMessage{p.Message, p.Artifact, p.Status, p.Task} {
		c.payload(nested, depth+1)
	}
}

// duplicated reports whether one of texts is the JSON of structured.
func duplicated(structured json.RawMessage, texts []string) bool {
	var want any
	if json.Unmarshal(structured, &want) != nil {
		return false
	}
	for _, t := range texts {
		var got any
		if json.Unmarshal([]byte(t), &got) == nil && reflect.DeepEqual(got, want) {
			return true
		}
	}
	return false
}
