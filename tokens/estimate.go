package tokens

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Request is what a gateway needs to know about an LLM API request before
// forwarding it: its estimated input size and how much output it may ask
// for. All counts are tokens.
type Request struct {
	// Model is the model named in the body, or for Gemini in the path.
	Model string
	// Stream reports whether the response will stream (the "stream" member,
	// a Gemini :streamGenerateContent path, or Ollama's default).
	Stream bool
	// IncludeUsage reports OpenAI's stream_options.include_usage: without it
	// an OpenAI stream carries no usage.
	IncludeUsage bool
	// MaxOutput is the requested output cap (max_completion_tokens,
	// max_tokens, max_output_tokens, generationConfig.maxOutputTokens,
	// options.num_predict or inferenceConfig.maxTokens); 0 when absent.
	MaxOutput int64
	// ThinkingBudget is Gemini's thinkingConfig.thinkingBudget, billed as
	// output on top of MaxOutput; 0 when absent.
	ThinkingBudget int64
	// Input is the estimated input: system and developer prompts, message
	// text, tool calls and results, and tool definitions. It includes no
	// chat framing (providers add a few tokens per message; see Messages).
	Input int64
	// Messages is the number of messages (or Gemini contents, or Responses
	// input items), for callers that add per-message framing.
	Messages int
	// NonText is the number of parts that are not text (images, audio,
	// files); they are not counted in Input.
	NonText int
	// FromLength reports that Input was estimated from the body length
	// only, because the body was over the read limit.
	FromLength bool
}

// maxNesting bounds how deep the content walk follows nested parts.
const maxNesting = 8

// counter walks request and payload JSON and adds up token estimates. It
// reads JSON with the package's allocation-free reader; the only
// allocations are the strings handed to the Estimator.
type counter struct {
	e       Estimator
	tokens  int64
	nonText int
	buf     []byte // unescaped strings
	cbuf    bytes.Buffer
}

func (c *counter) count(text []byte) {
	if len(text) > 0 {
		c.tokens += max(c.e.CountTokens(string(text)), 0)
	}
}

// rawText counts raw if it is a JSON string.
func (c *counter) rawText(raw []byte) bool {
	text, buf, ok := unquote(raw, c.buf)
	c.buf = buf
	if ok {
		c.count(text)
	}
	return ok
}

// compactJSON counts the compact serialization of raw (tool definitions,
// tool_use inputs, structured data), keeping the document's key order and
// escapes.
func (c *counter) compactJSON(raw []byte) {
	if isNull(raw) {
		return
	}
	c.cbuf.Reset()
	if json.Compact(&c.cbuf, raw) != nil {
		return
	}
	c.count(c.cbuf.Bytes())
}

func jsonString(raw []byte) (string, bool) {
	text, _, ok := unquote(raw, nil)
	return string(text), ok
}

// content counts a content value: a string, an array of parts or strings
// (or token ids), or one part object.
func (c *counter) content(raw []byte, depth int) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > maxNesting {
		return
	}
	switch raw[0] {
	case '"':
		c.rawText(raw)
	case '[':
		eachElement(raw, func(it []byte) {
			if it[0] == '-' || (it[0] >= '0' && it[0] <= '9') {
				c.tokens++ // a token id (completions and embeddings prompts)
				return
			}
			c.content(it, depth+1)
		})
	case '{':
		c.part(raw, depth)
	}
}

// wirePart holds the members of a message, a content part or block, a
// Gemini content or part, or a Responses input item that may hold text the
// model reads.
type wirePart struct {
	typ, kind, text, thinking, content, parts, input, arguments, output   []byte
	toolCalls, function, functionCall, functionResponse, toolUse          []byte
	toolResult, json, resource, data, imageURL, inlineData, fileData, src []byte
}

// part counts one message, part, block or item.
func (c *counter) part(raw []byte, depth int) {
	if depth > maxNesting {
		return
	}
	var p wirePart
	ok := eachMember(raw, func(k, v []byte) {
		switch string(k) {
		case "type":
			p.typ = v
		case "kind":
			p.kind = v
		case "text":
			p.text = v
		case "thinking":
			p.thinking = v
		case "content":
			p.content = v
		case "parts":
			p.parts = v
		case "input":
			p.input = v
		case "arguments":
			p.arguments = v
		case "output":
			p.output = v
		case "tool_calls":
			p.toolCalls = v
		case "function":
			p.function = v
		case "functionCall":
			p.functionCall = v
		case "functionResponse":
			p.functionResponse = v
		case "toolUse":
			p.toolUse = v
		case "toolResult":
			p.toolResult = v
		case "json":
			p.json = v
		case "resource":
			p.resource = v
		case "data":
			p.data = v
		case "image_url":
			p.imageURL = v
		case "inlineData":
			p.inlineData = v
		case "fileData":
			p.fileData = v
		case "source":
			p.src = v
		}
	})
	if !ok {
		return
	}
	if !c.rawText(p.text) {
		if t := bytes.TrimSpace(p.text); len(t) > 0 && t[0] == '{' {
			c.part(t, depth+1) // nested text objects
		}
	}
	c.rawText(p.thinking)
	c.content(p.content, depth+1)
	c.content(p.parts, depth+1)
	c.content(p.toolCalls, depth+1)
	switch {
	case typeIs(p.typ, "tool_use"), typeIs(p.typ, "server_tool_use"):
		c.compactJSON(p.input)
	case typeIs(p.typ, "function_call_output"):
		c.content(p.output, depth+1)
	}
	if d := bytes.TrimSpace(p.data); len(d) > 0 && d[0] == '{' {
		c.compactJSON(d) // A2A data parts
	}
	if !c.rawText(p.arguments) {
		c.compactJSON(p.arguments)
	}
	for _, f := range [][]byte{p.function, p.toolUse, p.toolResult, p.resource} {
		if t := bytes.TrimSpace(f); len(t) > 0 && t[0] == '{' {
			c.part(t, depth+1)
		}
	}
	if args, ok := member(p.functionCall, "args"); ok {
		c.compactJSON(args)
	}
	if resp, ok := member(p.functionResponse, "response"); ok {
		c.compactJSON(resp)
	}
	c.compactJSON(p.json) // Bedrock toolResult content {"json": ...}
	if !isNull(p.imageURL) || !isNull(p.inlineData) || !isNull(p.fileData) ||
		typeIs(p.typ, "image") || typeIs(p.typ, "input_image") || typeIs(p.typ, "input_audio") ||
		typeIs(p.typ, "document") || typeIs(p.typ, "input_file") || typeIs(p.typ, "audio") ||
		typeIs(p.typ, "resource_link") || typeIs(p.kind, "file") {
		c.nonText++
	}
}

// wireRequest holds the top-level members of a request body that matter.
type wireRequest struct {
	model, stream, streamOptions, maxTokens, maxCompletionTokens, maxOutputTokens []byte
	generationConfig, options, inferenceConfig                                    []byte
	messages, contents, system, systemInstruction, instructions, prompt, input    []byte
	tools, functions, responseFormat                                              []byte
}

// EstimateRequest reads an LLM API request body and estimates its input
// tokens with e (Heuristic when e is nil). path is the request path with
// its query; it gives the Gemini model and stream mode and may be empty.
//
// It understands OpenAI Chat Completions, legacy Completions, Embeddings
// and Responses; Anthropic Messages; Gemini generateContent; and, as a
// bonus, Ollama native chat/generate and Bedrock Converse bodies. A body
// that is not a JSON object returns ErrMalformedRequest; EstimateFromLength
// is then a fallback.
func EstimateRequest(path string, body []byte, e Estimator) (Request, error) {
	if e == nil {
		e = Heuristic{}
	}
	var w wireRequest
	ok := eachMember(body, func(k, v []byte) {
		switch string(k) {
		case "model":
			w.model = v
		case "stream":
			w.stream = v
		case "stream_options":
			w.streamOptions = v
		case "max_tokens":
			w.maxTokens = v
		case "max_completion_tokens":
			w.maxCompletionTokens = v
		case "max_output_tokens":
			w.maxOutputTokens = v
		case "generationConfig":
			w.generationConfig = v
		case "options":
			w.options = v
		case "inferenceConfig":
			w.inferenceConfig = v
		case "messages":
			w.messages = v
		case "contents":
			w.contents = v
		case "system":
			w.system = v
		case "systemInstruction":
			w.systemInstruction = v
		case "instructions":
			w.instructions = v
		case "prompt":
			w.prompt = v
		case "input":
			w.input = v
		case "tools":
			w.tools = v
		case "functions":
			w.functions = v
		case "response_format":
			w.responseFormat = v
		}
	})
	if !ok {
		return Request{}, ErrMalformedRequest
	}
	var r Request
	if s, ok := jsonString(w.model); ok {
		r.Model = s
	} else {
		r.Model = ModelFromPath(path)
	}
	r.Stream = string(bytes.TrimSpace(w.stream)) == "true" ||
		strings.Contains(path, ":streamGenerateContent") ||
		(w.stream == nil && (strings.HasPrefix(path, "/api/chat") || strings.HasPrefix(path, "/api/generate")))
	if v, ok := member(w.streamOptions, "include_usage"); ok {
		r.IncludeUsage = string(v) == "true"
	}
	genMax, _ := member(w.generationConfig, "maxOutputTokens")
	numPredict, _ := member(w.options, "num_predict")
	infMax, _ := member(w.inferenceConfig, "maxTokens")
	for _, raw := range [][]byte{w.maxCompletionTokens, w.maxTokens, w.maxOutputTokens, genMax, numPredict, infMax} {
		if v, ok, _ := parseCount(raw); ok {
			r.MaxOutput = v
			break
		}
	}
	if tc, ok := member(w.generationConfig, "thinkingConfig"); ok {
		if tb, ok := member(tc, "thinkingBudget"); ok {
			r.ThinkingBudget, _, _ = parseCount(tb)
		}
	}

	c := counter{e: e}
	c.content(w.system, 0)
	c.content(w.systemInstruction, 0)
	c.content(w.instructions, 0)
	c.content(w.prompt, 0)
	c.content(w.input, 0)
	c.content(w.messages, 0)
	c.content(w.contents, 0)
	c.compactJSON(w.tools)
	c.compactJSON(w.functions)
	if bytes.Contains(w.responseFormat, []byte("json_schema")) {
		c.compactJSON(w.responseFormat)
	}
	r.Input = c.tokens
	r.NonText = c.nonText
	for _, list := range [][]byte{w.messages, w.contents, w.input} {
		eachElement(list, func(it []byte) {
			if it[0] == '{' {
				r.Messages++
			}
		})
	}
	return r, nil
}

// BytesPerToken is the ratio EstimateFromLength uses: JSON request bodies
// of mixed prose and structure average about 4 bytes per o200k token, and
// the body's own syntax makes the estimate an upper bound for most bodies.
const BytesPerToken = 4

// EstimateFromLength estimates the input tokens of a body of n bytes
// without reading it: n / BytesPerToken, rounded up, 0 for n <= 0.
func EstimateFromLength(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + BytesPerToken - 1) / BytesPerToken
}

// ModelFromPath returns the model named in a Gemini-style path
// ("/v1beta/models/gemini-2.5-flash:generateContent" gives
// "gemini-2.5-flash", also under Vertex "publishers/google/models/"), or "".
func ModelFromPath(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	i := strings.LastIndex(path, "/models/")
	if i < 0 {
		return ""
	}
	m := path[i+len("/models/"):]
	if j := strings.IndexAny(m, ":/"); j >= 0 {
		m = m[:j]
	}
	return m
}
