package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// mockMCP is a small MCP server over Streamable HTTP (JSON responses) that
// stands in for the tools the gateway fronts when no -upstream is given.
// Its tools:
//
//	echo        {"text": "..."}            the text back
//	web_search  {"query": "..."}           five results, about 150 tokens
//	fetch_page  {"url": "...", "pages": n} n pages of about 1,000 tokens
//
// It is safe for concurrent use; Calls counts the requests it received.
type mockMCP struct{ calls atomic.Int64 }

// Calls returns how many requests reached the server.
func (m *mockMCP) Calls() int64 { return m.calls.Load() }

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"params"`
}

func (m *mockMCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.calls.Add(1)
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeRPCError(w, http.StatusBadRequest, nil, -32700, "parse error", nil)
		return
	}
	if req.ID == nil { // a notification
		w.WriteHeader(http.StatusAccepted)
		return
	}
	switch req.Method {
	case "initialize":
		writeRPCResult(w, req.ID, map[string]any{
			"protocolVersion": "2025-06-18",
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]any{"name": "mock-tools", "version": "1.0.0"},
		})
	case "tools/list":
		writeRPCResult(w, req.ID, map[string]any{"tools": []any{
			tool("echo", "Returns its text.", "text"),
			tool("web_search", "Searches the web.", "query"),
			tool("fetch_page", "Fetches a page as text; pages is how many.", "url"),
		}})
	case "tools/call":
		var args struct {
			Text, Query, URL string
			Pages            int
		}
		json.Unmarshal(req.Params.Arguments, &args)
		var text string
		switch req.Params.Name {
		case "echo":
			text = args.Text
		case "web_search":
			var b strings.Builder
			for i := 1; i <= 5; i++ {
				fmt.Fprintf(&b, "%d. %s, result %d: https://example.com/%d\n%s\n", i, args.Query, i, i, prose(20))
			}
			text = b.String()
		case "fetch_page":
			text = args.URL + "\n" + prose(1000*max(args.Pages, 1))
		default:
			writeRPCError(w, http.StatusOK, req.ID, -32602, "unknown tool: "+req.Params.Name, nil)
			return
		}
		writeRPCResult(w, req.ID, map[string]any{
			"content": []any{map[string]any{"type": "text", "text": text}},
			"isError": false,
		})
	default:
		writeRPCError(w, http.StatusOK, req.ID, -32601, "method not found", nil)
	}
}

func tool(name, description, arg string) map[string]any {
	return map[string]any{"name": name, "description": description, "inputSchema": map[string]any{
		"type": "object", "properties": map[string]any{arg: map[string]any{"type": "string"}},
	}}
}

// prose returns n words of English, about one token each.
func prose(n int) string {
	words := strings.Fields(`tools return text that a model reads so the size of a
		result is what it costs the model and a gateway can count it`)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[i%len(words)])
	}
	return b.String()
}

func writeRPCResult(w http.ResponseWriter, id json.RawMessage, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

// writeRPCError writes a JSON-RPC error response with HTTP status status.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string, data any) {
	e := map[string]any{"code": code, "message": msg}
	if data != nil {
		e["data"] = data
	}
	if id == nil {
		id = json.RawMessage("null")
	}
	writeJSON(w, status, map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
