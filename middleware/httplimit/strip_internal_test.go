package httplimit

import (
	"bytes"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestEventEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"data: a\n\n", 9},
		{"data: a\r\n\r\n", 11},
		{"data: a\r\rdata: b", 9},
		{"data: a\r\r\ndata: b", 10},
		{"data: a\r\r", -1}, // the second CR may be followed by LF
		{"data: a\r\n\r", -1},
		{"data: a\n", -1},
		{"data: a\ndata: b\n\nrest", 17},
		{"", -1},
	} {
		if got := eventEnd([]byte(c.in)); got != c.want {
			t.Errorf("eventEnd(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestStripUsageChunkAnySplit feeds the stream in every chunk size from 1
// to 64 bytes and checks that exactly the usage chunk is removed.
func TestStripUsageChunkAnySplit(t *testing.T) {
	sse, err := os.ReadFile("testdata/openai_chat_stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(sse, []byte(`"choices":[],"usage"`))
	start := bytes.LastIndex(sse[:i], []byte("data: "))
	end := start + bytes.Index(sse[start:], []byte("\n\n")) + 2
	want := append(append([]byte{}, sse[:start]...), sse[end:]...)
	crlf := []byte(strings.ReplaceAll(string(sse), "\n", "\r\n"))
	wantCRLF := []byte(strings.ReplaceAll(string(want), "\n", "\r\n"))
	for _, c := range []struct{ in, want []byte }{{sse, want}, {crlf, wantCRLF}} {
		for n := 1; n <= 64; n++ {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "text/event-stream")
			w := &meteredWriter{rw: rec, strip: true}
			for b := c.in; len(b) > 0; {
				k := min(n, len(b))
				w.Write(b[:k])
				b = b[k:]
			}
			w.finish()
			if !bytes.Equal(rec.Body.Bytes(), c.want) {
				t.Fatalf("chunks of %d: got\n%q\nwant\n%q", n, rec.Body.Bytes(), c.want)
			}
			if u, ok := w.meter.Usage(); !ok || u.Output != 9 {
				t.Fatalf("chunks of %d: meter saw %+v %v, want the stripped chunk's usage", n, u, ok)
			}
		}
	}
}

func TestInjectIncludeUsage(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{`  { }`, `  {"stream_options":{"include_usage":true} }`},
		{`{"stream_options":null,"stream":true}`, `{"stream":true,"stream_options":{"include_usage":true}}`},
		{`{"stream_options":{"include_obfuscation":false},"stream":true}`, `{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true}}`},
	} {
		got, ok := injectIncludeUsage([]byte(c.in))
		if !ok || string(got) != c.want {
			t.Errorf("inject(%s) = %s, %v; want %s", c.in, got, ok, c.want)
		}
	}
	if _, ok := injectIncludeUsage([]byte(`[1]`)); ok {
		t.Error("a non-object body was rewritten")
	}
}
