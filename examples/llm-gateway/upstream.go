package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate-go/tollgate/tokens"
)

// mockUpstream stands in for an OpenAI-compatible provider when no
// -upstream is given. It answers POST /v1/chat/completions, as one JSON
// document or, with "stream": true, as an SSE stream that ends with a
// usage chunk when stream_options.include_usage asks for it, like OpenAI.
//
// Its answers are deterministic: the prompt is counted like OpenAI counts
// it (the text's tokens plus 3 per message and 3 to prime the reply), and
// the reply is answerTokens one-token words, or the request's max_tokens
// when that is fewer (finish_reason "length"). A stream sends
// wordsPerChunk words per chunk, chunkDelay apart.
//
// It is safe for concurrent use; Calls counts the requests it received.
type mockUpstream struct {
	chunkDelay time.Duration
	calls      atomic.Int64
}

const (
	answerTokens  = 300
	wordsPerChunk = 6
)

// Calls returns how many requests reached the upstream.
func (m *mockUpstream) Calls() int64 { return m.calls.Load() }

func (m *mockUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		openAIError(w, http.StatusNotFound, "invalid_request_error", "the mock upstream only serves POST /v1/chat/completions")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return
	}
	req, err := tokens.EstimateRequest(r.URL.Path, body, nil)
	if err != nil || req.Model == "" {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "the body is not a chat completion request")
		return
	}
	usage := map[string]int64{"prompt_tokens": req.Input + 3*int64(req.Messages) + 3}
	words, finish := answerTokens, "stop"
	if req.MaxOutput > 0 && req.MaxOutput < answerTokens {
		words, finish = int(req.MaxOutput), "length"
	}
	usage["completion_tokens"] = int64(words)
	usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

	id := fmt.Sprintf("chatcmpl-mock%06d", m.calls.Load())
	created := time.Now().Unix()
	if !req.Stream {
		time.Sleep(m.chunkDelay) // a provider takes a while even without streaming
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": answer(0, words)},
				"finish_reason": finish,
			}},
			"usage": usage,
		})
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
		if req.IncludeUsage {
			c["usage"] = nil // OpenAI sends "usage": null on every chunk but the last
		}
		return c
	}
	send := func(v any) error {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)) != nil {
		return
	}
	for i := 0; i < words; i += wordsPerChunk {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(m.chunkDelay):
		}
		if send(chunk(map[string]any{"content": answer(i, min(words, i+wordsPerChunk))}, nil)) != nil {
			return
		}
	}
	if send(chunk(map[string]any{}, finish)) != nil {
		return
	}
	if req.IncludeUsage {
		if send(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{}, "usage": usage,
		}) != nil {
			return
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// vocabulary holds common English words that are one token each in the
// o200k_base and cl100k_base vocabularies when preceded by a space.
var vocabulary = strings.Fields(`a rate limiter keeps a shared resource fair
	by counting what each caller uses and saying no once a limit is reached
	so that one busy client cannot starve the others`)

// answer returns words from to to (exclusive) of the mock's reply.
func answer(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vocabulary[i%len(vocabulary)])
	}
	return b.String()
}

// openAIError writes an error in OpenAI's format, which its SDKs parse.
func openAIError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": nil, "param": nil}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
