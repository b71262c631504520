package tokens

import (
	"bytes"
	"encoding/json"
)

// MaxCount is the largest token count a decoder reports for one field
// (2^40, about 1.1e12 tokens). Larger integers on the wire are clamped to it,
// so that sums of several fields never overflow an int64.
const MaxCount int64 = 1 << 40

// Usage is the normalized token usage of one LLM call. All numbers are
// tokens. The zero value means "nothing was used".
//
// Input counts every prompt-side token the provider processed, including
// cache reads and cache writes; Output counts every generated token billed as
// output, including reasoning (thinking) tokens. CachedInput and Reasoning are
// details already contained in Input and Output. Total is always
// Input + Output.
type Usage struct {
	Input       int64 // prompt-side tokens, cache reads and writes included
	Output      int64 // generated tokens, reasoning included
	CachedInput int64 // part of Input served from a prompt cache
	Reasoning   int64 // part of Output spent on reasoning / thinking
	Total       int64 // Input + Output
}

// field names one raw counter found on the wire.
type field uint8

const (
	fPrompt           field = iota // OpenAI prompt_tokens
	fCompletion                    // OpenAI completion_tokens
	fTotal                         // OpenAI / Responses total_tokens
	fInput                         // Anthropic / Responses input_tokens
	fOutput                        // Anthropic / Responses output_tokens
	fCacheCreation                 // Anthropic cache_creation_input_tokens
	fCacheRead                     // Anthropic cache_read_input_tokens
	fCached                        // *_tokens_details.cached_tokens
	fReasoning                     // *_tokens_details.reasoning_tokens, thinking_tokens
	fBedrockInput                  // Bedrock inputTokens
	fBedrockOutput                 // Bedrock outputTokens
	fBedrockRead                   // Bedrock cacheReadInputTokens
	fBedrockWrite                  // Bedrock cacheWriteInputTokens
	fGeminiPrompt                  // Gemini promptTokenCount
	fGeminiCandidates              // Gemini candidatesTokenCount
	fGeminiThoughts                // Gemini thoughtsTokenCount
	fGeminiToolUse                 // Gemini toolUsePromptTokenCount
	fGeminiCached                  // Gemini cachedContentTokenCount
	fOllamaPrompt                  // Ollama prompt_eval_count
	fOllamaEval                    // Ollama eval_count
	numFields
)

// snapshot is one usage report as found on the wire, before normalization.
type snapshot struct {
	v   [numFields]int64
	set uint32 // bit i: field i was present (not absent, not null)
}

func (s *snapshot) put(f field, v int64) {
	s.v[f] = v
	s.set |= 1 << f
}

func (s *snapshot) has(f field) bool { return s.set&(1<<f) != 0 }

func (s *snapshot) hasAny(fs ...field) bool {
	for _, f := range fs {
		if s.has(f) {
			return true
		}
	}
	return false
}

// merge overwrites the fields present in o, keeping the others (Anthropic
// message_delta semantics).
func (s *snapshot) merge(o *snapshot) {
	for f := field(0); f < numFields; f++ {
		if o.has(f) {
			s.put(f, o.v[f])
		}
	}
}

// usage normalizes the snapshot. Every field is at most MaxCount, so no sum
// below can overflow.
func (s *snapshot) usage() Usage {
	v := &s.v
	var u Usage
	switch {
	case s.hasAny(fGeminiPrompt, fGeminiCandidates, fGeminiThoughts, fGeminiToolUse, fGeminiCached):
		u.Input = v[fGeminiPrompt] + v[fGeminiToolUse]
		u.Output = v[fGeminiCandidates] + v[fGeminiThoughts]
		u.CachedInput = v[fGeminiCached]
		u.Reasoning = v[fGeminiThoughts]
	case s.hasAny(fOllamaPrompt, fOllamaEval):
		u.Input = v[fOllamaPrompt]
		u.Output = v[fOllamaEval]
	case s.hasAny(fBedrockInput, fBedrockOutput, fBedrockRead, fBedrockWrite):
		u.Input = v[fBedrockInput] + v[fBedrockRead] + v[fBedrockWrite]
		u.Output = v[fBedrockOutput]
		u.CachedInput = v[fBedrockRead]
	case s.hasAny(fPrompt, fCompletion):
		u.Input = v[fPrompt]
		u.Output = v[fCompletion]
		// Some OpenAI-compatible servers (Gemini's) leave hidden reasoning out
		// of completion_tokens but count it in total_tokens.
		if s.has(fTotal) && v[fTotal]-u.Input > u.Output {
			u.Output = v[fTotal] - u.Input
		}
		u.CachedInput = v[fCached]
		u.Reasoning = v[fReasoning]
	default: // Anthropic and the Responses API
		u.Input = v[fInput] + v[fCacheCreation] + v[fCacheRead]
		u.Output = v[fOutput]
		u.CachedInput = v[fCached]
		if s.has(fCacheRead) {
			u.CachedInput = v[fCacheRead]
		}
		u.Reasoning = v[fReasoning]
	}
	u.CachedInput = min(u.CachedInput, u.Input)
	u.Reasoning = min(u.Reasoning, u.Output)
	u.Total = u.Input + u.Output
	return u
}

// parseCount reads one token count. null (or nothing) is absent. A
// non-negative integer literal is valid (a fraction of zeros, as in 12.0, is
// accepted); it is clamped to MaxCount. Anything else (negative, fractional,
// exponent, string, bool, object) is invalid.
func parseCount(raw []byte) (v int64, present, valid bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, true
	}
	i := 0
	for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
		if v < MaxCount {
			v = v*10 + int64(raw[i]-'0')
		}
	}
	if i == 0 {
		return 0, false, false
	}
	if i < len(raw) {
		if raw[i] != '.' || i+1 == len(raw) {
			return 0, false, false
		}
		for _, c := range raw[i+1:] {
			if c != '0' {
				return 0, false, false
			}
		}
	}
	return min(v, MaxCount), true, true
}

// counts fills s from raw counters; it reports false when one is invalid.
func (s *snapshot) counts(pairs ...countPair) bool {
	for _, p := range pairs {
		v, ok, valid := parseCount(p.raw)
		if !valid {
			return false
		}
		if ok {
			s.put(p.f, v)
		}
	}
	return true
}

type countPair struct {
	f   field
	raw []byte
}

type wireDetails struct {
	CachedTokens    json.RawMessage `json:"cached_tokens"`
	ReasoningTokens json.RawMessage `json:"reasoning_tokens"`
	ThinkingTokens  json.RawMessage `json:"thinking_tokens"`
}

// wireUsage is the union of the `usage` objects of OpenAI Chat, Completions,
// Embeddings, Responses, Anthropic and Bedrock Converse.
type wireUsage struct {
	PromptTokens      json.RawMessage `json:"prompt_tokens"`
	CompletionTokens  json.RawMessage `json:"completion_tokens"`
	TotalTokens       json.RawMessage `json:"total_tokens"`
	InputTokens       json.RawMessage `json:"input_tokens"`
	OutputTokens      json.RawMessage `json:"output_tokens"`
	CacheCreation     json.RawMessage `json:"cache_creation_input_tokens"`
	CacheRead         json.RawMessage `json:"cache_read_input_tokens"`
	ReasoningTokens   json.RawMessage `json:"reasoning_tokens"`
	PromptDetails     *wireDetails    `json:"prompt_tokens_details"`
	CompletionDetails *wireDetails    `json:"completion_tokens_details"`
	InputDetails      *wireDetails    `json:"input_tokens_details"`
	OutputDetails     *wireDetails    `json:"output_tokens_details"`
	BedrockInput      json.RawMessage `json:"inputTokens"`
	BedrockOutput     json.RawMessage `json:"outputTokens"`
	BedrockRead       json.RawMessage `json:"cacheReadInputTokens"`
	BedrockWrite      json.RawMessage `json:"cacheWriteInputTokens"`
}

type wireGemini struct {
	Prompt     json.RawMessage `json:"promptTokenCount"`
	Candidates json.RawMessage `json:"candidatesTokenCount"`
	Thoughts   json.RawMessage `json:"thoughtsTokenCount"`
	ToolUse    json.RawMessage `json:"toolUsePromptTokenCount"`
	Cached     json.RawMessage `json:"cachedContentTokenCount"`
}

func isNull(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// decodeUsage decodes a `usage` object. ok is false when raw is null, not an
// object, carries no known counter, or carries an invalid counter.
func decodeUsage(raw []byte) (s snapshot, ok bool) {
	if isNull(raw) {
		return s, false
	}
	var w wireUsage
	if json.Unmarshal(raw, &w) != nil {
		return s, false
	}
	var cached, reasoning []byte
	for _, d := range []*wireDetails{w.PromptDetails, w.InputDetails} {
		if d != nil && !isNull(d.CachedTokens) {
			cached = d.CachedTokens
		}
	}
	reasoning = w.ReasoningTokens
	for _, d := range []*wireDetails{w.CompletionDetails, w.OutputDetails} {
		if d == nil {
			continue
		}
		if !isNull(d.ReasoningTokens) {
			reasoning = d.ReasoningTokens
		} else if !isNull(d.ThinkingTokens) {
			reasoning = d.ThinkingTokens
		}
	}
	valid := s.counts(
		countPair{fPrompt, w.PromptTokens},
		countPair{fCompletion, w.CompletionTokens},
		countPair{fTotal, w.TotalTokens},
		countPair{fInput, w.InputTokens},
		countPair{fOutput, w.OutputTokens},
		countPair{fCacheCreation, w.CacheCreation},
		countPair{fCacheRead, w.CacheRead},
		countPair{fCached, cached},
		countPair{fReasoning, reasoning},
		countPair{fBedrockInput, w.BedrockInput},
		countPair{fBedrockOutput, w.BedrockOutput},
		countPair{fBedrockRead, w.BedrockRead},
		countPair{fBedrockWrite, w.BedrockWrite},
	)
	const main = 1<<fPrompt | 1<<fCompletion | 1<<fTotal | 1<<fInput | 1<<fOutput |
		1<<fCacheCreation | 1<<fCacheRead | 1<<fBedrockInput | 1<<fBedrockOutput |
		1<<fBedrockRead | 1<<fBedrockWrite
	return s, valid && s.set&main != 0
}

// decodeGemini decodes a Gemini `usageMetadata` object.
func decodeGemini(raw []byte) (s snapshot, ok bool) {
	if isNull(raw) {
		return s, false
	}
	var w wireGemini
	if json.Unmarshal(raw, &w) != nil {
		return s, false
	}
	valid := s.counts(
		countPair{fGeminiPrompt, w.Prompt},
		countPair{fGeminiCandidates, w.Candidates},
		countPair{fGeminiThoughts, w.Thoughts},
		countPair{fGeminiToolUse, w.ToolUse},
		countPair{fGeminiCached, w.Cached},
	)
	return s, valid && s.set != 0
}

// decodeOllama decodes the top-level counters of an Ollama native object.
func decodeOllama(prompt, eval []byte) (s snapshot, ok bool) {
	valid := s.counts(countPair{fOllamaPrompt, prompt}, countPair{fOllamaEval, eval})
	return s, valid && s.set != 0
}
