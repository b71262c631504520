package tokens

import (
	"errors"
	"testing"
)

func TestPayloadTokensStreamEqualsJSON(t *testing.T) {
	whole, err := PayloadTokens(readFixture(t, "mcp_tools_call_result.json"), byteCounter{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := PayloadTokens(readFixture(t, "mcp_tools_call_result_stream.sse"), byteCounter{})
	if err != nil {
		t.Fatal(err)
	}
	if whole != stream || whole == 0 {
		t.Errorf("JSON body counts %d bytes, the same result over SSE %d", whole, stream)
	}
}

func TestPayloadTokensShapes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int64 // bytes counted, with byteCounter
	}{
		{"structuredContent duplicated by a text item is counted once",
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"a\": 1}"}],"structuredContent":{"a":1}}}`, 8},
		{"structuredContent alone",
			`{"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{"a":1}}}`, 7},
		{"images and links are not text",
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","data":"QUJD","mimeType":"image/png"},{"type":"resource_link","uri":"x://y"},{"type":"text","text":"ok"}],"isError":true}}`, 2},
		{"embedded resource text",
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"resource","resource":{"uri":"f","text":"abc"}}]}}`, 3},
		{"resources/read",
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"f","text":"abcd"},{"uri":"g","blob":"AAAA"}]}}`, 4},
		{"A2A 1.0 parts without kind",
			`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"role":"ROLE_USER","parts":[{"text":"hi"},{"data":{"k":1}}]}}}`, 9},
		{"A2A task result with artifacts and status",
			`{"jsonrpc":"2.0","id":1,"result":{"kind":"task","status":{"state":"completed","message":{"parts":[{"kind":"text","text":"ab"}]}},"artifacts":[{"parts":[{"kind":"text","text":"cde"}]}]}}`, 5},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"message":"working"}}`, 0},
		{"error", `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}`, 0},
		{"batch", `[{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ab"}]}},{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"c"}]}}]`, 3},
	} {
		got, err := PayloadTokens([]byte(tc.body), byteCounter{})
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestPayloadTokensMalformed(t *testing.T) {
	for _, body := range []string{"", "   ", "{", "[1,", "hello", "data: not json\n\n"} {
		if _, err := PayloadTokens([]byte(body), nil); !errors.Is(err, ErrMalformedPayload) {
			t.Errorf("PayloadTokens(%q) error = %v, want ErrMalformedPayload", body, err)
		}
	}
}
