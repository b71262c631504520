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

type wireRequest struct {
	Model               json.RawMessage `json:"model"`
	Stream              json.RawMessage `json:"stream"`
	StreamOptions       json.RawMessage `json:"stream_options"`
	MaxTokens           json.RawMessage `json:"max_tokens"`
	MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
	MaxOutputTokens     json.RawMessage `json:"max_output_tokens"`
	GenerationConfig    json.RawMessage `json:"generationConfig"`
	Options             json.RawMessage `json:"options"`
	InferenceConfig     json.RawMessage `json:"inferenceConfig"`

	Messages          []json.RawMessage `json:"messages"`
	Contents          []json.RawMessage `json:"contents"`
	System            json.RawMessage   `json:"system"`
	SystemInstruction json.RawMessage   `json:"systemInstruction"`
	Instructions      json.RawMessage   `json:"instructions"`
	Prompt            json.RawMessage   `json:"prompt"`
	Input             json.RawMessage   `json:"input"`
	Tools             json.RawMessage   `json:"tools"`
	Functions         json.RawMessage   `json:"functions"`
	ResponseFormat    json.RawMessage   `json:"response_format"`
}

// wirePart is the union of a message, a content part or block, a Gemini
// content or part, and a Responses input item: every member that may hold
// text the model reads.
type wirePart struct {
	Type             json.RawMessage   `json:"type"`
	Text             json.RawMessage   `json:"text"`
	Thinking         json.RawMessage   `json:"thinking"`
	Content          json.RawMessage   `json:"content"`
	Parts            []json.RawMessage `json:"parts"`
	Input            json.RawMessage   `json:"input"`
	Arguments        json.RawMessage   `json:"arguments"`
	Output           json.RawMessage   `json:"output"`
	ToolCalls        []json.RawMessage `json:"tool_calls"`
	Function         json.RawMessage   `json:"function"`
	FunctionCall     json.RawMessage   `json:"functionCall"`
	FunctionResponse json.RawMessage   `json:"functionResponse"`
	ToolUse          json.RawMessage   `json:"toolUse"`
	ToolResult       json.RawMessage   `json:"toolResult"`
	JSON             json.RawMessage   `json:"json"`
	Args             json.RawMessage   `json:"args"`
	Response         json.RawMessage   `json:"response"`
	Resource         json.RawMessage   `json:"resource"`
	Data             json.RawMessage   `json:"data"`
	Kind             json.RawMessage   `json:"kind"`
	ImageURL         json.RawMessage   `json:"image_url"`
	InlineData       json.RawMessage   `json:"inlineData"`
	FileData         json.RawMessage   `json:"fileData"`
	Source           json.RawMessage   `json:"source"`
}

// maxNesting bounds how deep the content walk follows nested parts.
const maxNesting = 8

// counter walks request and payload JSON and adds up token estimates.
type counter struct {
	e       Estimator
	tokens  int64
	nonText int
	buf     bytes.Buffer
}

func (c *counter) text(s string) {
	c.tokens += max(c.e.CountTokens(s), 0)
}

// rawText counts raw if it is a JSON string.
func (c *counter) rawText(raw json.RawMessage) bool {
	if s, ok := jsonString(raw); ok {
		c.text(s)
		return true
	}
	return false
}

// compactJSON counts the compact serialization of raw (tool definitions,
// tool_use inputs, structured data), keeping the document's key order.
func (c *counter) compactJSON(raw json.RawMessage) {
	if isNull(raw) {
		return
	}
	c.buf.Reset()
	if json.Compact(&c.buf, raw) != nil {
		return
	}
	c.text(c.buf.String())
}

func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// content counts a content value: a string, an array of parts or strings
// (or token ids), or one part object.
func (c *counter) content(raw json.RawMessage, depth int) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > maxNesting {
		return
	}
	switch raw[0] {
	case '"':
		c.rawText(raw)
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return
		}
		for _, it := range items {
			it = bytes.TrimSpace(it)
			if len(it) > 0 && (it[0] >= '0' && it[0] <= '9') {
				c.tokens++ // a token id (completions and embeddings prompts)
				continue
			}
			c.content(it, depth+1)
		}
	case '{':
		c.part(raw, depth)
	}
}

// part counts one message, part, block or item.
func (c *counter) part(raw json.RawMessage, depth int) {
	var p wirePart
	if depth > maxNesting || json.Unmarshal(raw, &p) != nil {
		return
	}
	counted := c.rawText(p.Text)
	if !counted && len(p.Text) > 0 && bytes.TrimSpace(p.Text)[0] == '{' {
		c.part(p.Text, depth+1) // Bedrock / Responses nested text objects
	}
	c.rawText(p.Thinking)
	c.content(p.Content, depth+1)
	for _, q := range p.Parts {
		c.content(q, depth+1)
	}
	for _, tc := range p.ToolCalls {
		c.part(tc, depth+1)
	}
	switch {
	case typeIs(p.Type, "tool_use"), typeIs(p.Type, "server_tool_use"):
		c.compactJSON(p.Input)
	case typeIs(p.Type, "function_call_output"):
		c.content(p.Output, depth+1)
	}
	if d := bytes.TrimSpace(p.Data); len(d) > 0 && d[0] == '{' {
		c.compactJSON(d) // A2A data parts
	}
	if !c.rawText(p.Arguments) {
		c.compactJSON(p.Arguments)
	}
	for _, f := range []json.RawMessage{p.Function, p.ToolUse} {
		if !isNull(f) {
			c.part(f, depth+1)
		}
	}
	if !isNull(p.FunctionCall) {
		var fc struct {
			Args json.RawMessage `json:"args"`
		}
		if json.Unmarshal(p.FunctionCall, &fc) == nil {
			c.compactJSON(fc.Args)
		}
	}
	if !isNull(p.FunctionResponse) {
		var fr struct {
			Response json.RawMessage `json:"response"`
		}
		if json.Unmarshal(p.FunctionResponse, &fr) == nil {
			c.compactJSON(fr.Response)
		}
	}
	if !isNull(p.ToolResult) {
		c.part(p.ToolResult, depth+1)
	}
	c.compactJSON(p.JSON) // Bedrock toolResult content {"json": ...}
	if !isNull(p.Resource) {
		c.part(p.Resource, depth+1) // MCP embedded resource text
	}
	if !isNull(p.ImageURL) || !isNull(p.InlineData) || !isNull(p.FileData) ||
		typeIs(p.Type, "image") || typeIs(p.Type, "input_image") || typeIs(p.Type, "input_audio") ||
		typeIs(p.Type, "document") || typeIs(p.Type, "input_file") || typeIs(p.Type, "audio") ||
		typeIs(p.Type, "resource_link") || typeIs(p.Kind, "file") {
		c.nonText++
	}
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
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &w) != nil {
		return Request{}, ErrMalformedRequest
	}
	var r Request
	if s, ok := jsonString(w.Model); ok {
		r.Model = s
	} else {
		r.Model = ModelFromPath(path)
	}
	r.Stream = string(bytes.TrimSpace(w.Stream)) == "true" ||
		strings.Contains(path, ":streamGenerateContent") ||
		(len(w.Stream) == 0 && (strings.HasPrefix(path, "/api/chat") || strings.HasPrefix(path, "/api/generate")))
	var so struct {
		IncludeUsage json.RawMessage `json:"include_usage"`
	}
	if json.Unmarshal(w.StreamOptions, &so) == nil {
		r.IncludeUsage = string(bytes.TrimSpace(so.IncludeUsage)) == "true"
	}

	var gen struct {
		MaxOutputTokens json.RawMessage `json:"maxOutputTokens"`
		ThinkingConfig  struct {
			ThinkingBudget json.RawMessage `json:"thinkingBudget"`
		} `json:"thinkingConfig"`
	}
	_ = json.Unmarshal(w.GenerationConfig, &gen)
	var opts struct {
		NumPredict json.RawMessage `json:"num_predict"`
	}
	_ = json.Unmarshal(w.Options, &opts)
	var inf struct {
		MaxTokens json.RawMessage `json:"maxTokens"`
	}
	_ = json.Unmarshal(w.InferenceConfig, &inf)
	for _, raw := range []json.RawMessage{w.MaxCompletionTokens, w.MaxTokens, w.MaxOutputTokens,
		gen.MaxOutputTokens, opts.NumPredict, inf.MaxTokens} {
		if v, ok, _ := parseCount(raw); ok {
			r.MaxOutput = v
			break
		}
	}
	r.ThinkingBudget, _, _ = parseCount(gen.ThinkingConfig.ThinkingBudget)

	c := counter{e: e}
	c.content(w.System, 0)
	c.content(w.SystemInstruction, 0)
	c.content(w.Instructions, 0)
	c.content(w.Prompt, 0)
	c.content(w.Input, 0)
	for _, m := range w.Messages {
		c.content(m, 0)
	}
	for _, m := range w.Contents {
		c.content(m, 0)
	}
	c.compactJSON(w.Tools)
	c.compactJSON(w.Functions)
	if bytes.Contains(w.ResponseFormat, []byte("json_schema")) {
		c.compactJSON(w.ResponseFormat)
	}
	r.Input = c.tokens
	r.NonText = c.nonText
	r.Messages = len(w.Messages) + len(w.Contents)
	if in := bytes.TrimSpace(w.Input); len(in) > 0 && in[0] == '[' && len(w.Messages) == 0 {
		var items []json.RawMessage
		if json.Unmarshal(in, &items) == nil {
			for _, it := range items {
				if it = bytes.TrimSpace(it); len(it) > 0 && it[0] == '{' {
					r.Messages++
				}
			}
		}
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
