package tokens

import "bytes"

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

// usageDecoder collects counters into a snapshot, remembering whether one
// was invalid.
type usageDecoder struct {
	s     snapshot
	valid bool
}

func (d *usageDecoder) set(f field, raw []byte) {
	v, present, valid := parseCount(raw)
	if !valid {
		d.valid = false
	} else if present {
		d.s.put(f, v)
	}
}

// details reads a *_tokens_details object: its counter named key goes to f.
// A details value that is neither null nor an object is invalid.
func (d *usageDecoder) details(raw []byte, f field, keys ...string) {
	if isNull(raw) {
		return
	}
	ok := eachMember(raw, func(k, v []byte) {
		for _, key := range keys {
			if string(k) == key && !isNull(v) {
				d.set(f, v)
			}
		}
	})
	if !ok {
		d.valid = false
	}
}

// mainFields are the counters that make a `usage` object a snapshot.
const mainFields = 1<<fPrompt | 1<<fCompletion | 1<<fTotal | 1<<fInput | 1<<fOutput |
	1<<fCacheCreation | 1<<fCacheRead | 1<<fBedrockInput | 1<<fBedrockOutput |
	1<<fBedrockRead | 1<<fBedrockWrite

// decodeUsage decodes a `usage` object: the union of OpenAI Chat,
// Completions, Embeddings, Responses, Anthropic and Bedrock Converse. ok is
// false when raw is null, not an object, carries no known counter, or
// carries an invalid counter. It allocates nothing.
func decodeUsage(raw []byte) (snapshot, bool) {
	if isNull(raw) {
		return snapshot{}, false
	}
	d := usageDecoder{valid: true}
	ok := eachMember(raw, func(k, v []byte) {
		switch string(k) {
		case "prompt_tokens":
			d.set(fPrompt, v)
		case "completion_tokens":
			d.set(fCompletion, v)
		case "total_tokens":
			d.set(fTotal, v)
		case "input_tokens":
			d.set(fInput, v)
		case "output_tokens":
			d.set(fOutput, v)
		case "cache_creation_input_tokens":
			d.set(fCacheCreation, v)
		case "cache_read_input_tokens":
			d.set(fCacheRead, v)
		case "reasoning_tokens":
			if !d.s.has(fReasoning) {
				d.set(fReasoning, v)
			}
		case "prompt_tokens_details", "input_tokens_details":
			d.details(v, fCached, "cached_tokens")
		case "completion_tokens_details", "output_tokens_details":
			d.details(v, fReasoning, "reasoning_tokens", "thinking_tokens")
		case "inputTokens":
			d.set(fBedrockInput, v)
		case "outputTokens":
			d.set(fBedrockOutput, v)
		case "cacheReadInputTokens":
			d.set(fBedrockRead, v)
		case "cacheWriteInputTokens":
			d.set(fBedrockWrite, v)
		}
	})
	return d.s, ok && d.valid && d.s.set&mainFields != 0
}

// decodeGemini decodes a Gemini `usageMetadata` object.
func decodeGemini(raw []byte) (snapshot, bool) {
	if isNull(raw) {
		return snapshot{}, false
	}
	d := usageDecoder{valid: true}
	ok := eachMember(raw, func(k, v []byte) {
		switch string(k) {
		case "promptTokenCount":
			d.set(fGeminiPrompt, v)
		case "candidatesTokenCount":
			d.set(fGeminiCandidates, v)
		case "thoughtsTokenCount":
			d.set(fGeminiThoughts, v)
		case "toolUsePromptTokenCount":
			d.set(fGeminiToolUse, v)
		case "cachedContentTokenCount":
			d.set(fGeminiCached, v)
		}
	})
	return d.s, ok && d.valid && d.s.set != 0
}

// decodeOllama decodes the top-level counters of an Ollama native object.
func decodeOllama(prompt, eval []byte) (snapshot, bool) {
	d := usageDecoder{valid: true}
	if prompt != nil {
		d.set(fOllamaPrompt, prompt)
	}
	if eval != nil {
		d.set(fOllamaEval, eval)
	}
	return d.s, d.valid && d.s.set != 0
}

func isNull(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
