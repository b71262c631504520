package httplimit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/tokens"
)

// apiKey returns the API key a request presents: an Authorization Bearer
// token, else x-api-key (Anthropic), api-key (Azure OpenAI) or
// x-goog-api-key (Gemini).
func apiKey(h http.Header) string {
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		if k := strings.TrimSpace(a[7:]); k != "" {
			return k
		}
	}
	for _, name := range [...]string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
		if v := h[name]; len(v) > 0 && v[0] != "" {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}

// clientIP returns the client address of r: the peer address, or, when the
// peer is a trusted proxy, the right-most untrusted hop of Forwarded (when
// present) or X-Forwarded-For.
func (m *Middleware) clientIP(r *http.Request) string {
	ra := r.RemoteAddr
	if len(m.cfg.trusted) == 0 && ra != "" && ra[0] != '[' {
		// No proxy to believe: an "a.b.c.d:port" peer, as net/http writes
		// it, is its own answer (IPv6 peers are parsed, to normalize them).
		if i := strings.LastIndexByte(ra, ':'); i > 0 && strings.IndexByte(ra[:i], ':') < 0 {
			return ra[:i]
		}
	}
	peer, ok := parseAddr(ra)
	if !ok {
		return r.RemoteAddr
	}
	if !m.trusted(peer) {
		if peer.Is4() {
			// The text of a parsed IPv4 address is already canonical:
			// keep it, without allocating.
			if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 && !strings.Contains(r.RemoteAddr[:i], ":") {
				return r.RemoteAddr[:i]
			}
			if !strings.Contains(r.RemoteAddr, ":") {
				return r.RemoteAddr
			}
		}
		return peer.String()
	}
	client := peer
	walk := func(hop string) bool { // reports whether to go on leftwards
		a, ok := parseAddr(hop)
		if !ok {
			return false // "unknown", an obfuscated name, garbage: stop here
		}
		client = a
		return m.trusted(a)
	}
	if fw := r.Header.Values("Forwarded"); len(fw) > 0 {
		eachRightToLeft(fw, func(elem string) bool { return walk(forwardedFor(elem)) })
	} else if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		eachRightToLeft(xff, walk)
	}
	return client.String()
}

func (m *Middleware) trusted(a netip.Addr) bool {
	for _, p := range m.cfg.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// eachRightToLeft calls f on every comma-separated element of the header
// lines, right to left, until f returns false.
func eachRightToLeft(lines []string, f func(string) bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		for s != "" {
			j := strings.LastIndexByte(s, ',')
			elem := strings.TrimSpace(s[j+1:])
			s = s[:max(j, 0)]
			if elem == "" {
				continue
			}
			if !f(elem) {
				return
			}
		}
	}
}

// forwardedFor returns the for= value of one Forwarded element (RFC 7239),
// unquoted.
func forwardedFor(elem string) string {
	for _, pair := range strings.Split(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// parseAddr parses an address with or without a port ("192.0.2.1",
// "192.0.2.1:80", "[2001:db8::1]:80", "2001:db8::1"), unmapping IPv4 in
// IPv6 and dropping a zone.
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// bodyFacts are the facts a JSON request body gives.
type bodyFacts struct {
	Model  string `json:"model"`
	Method string `json:"method"` // JSON-RPC
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

// peekFacts fills the model and tool of f from a JSON body prefix: the
// top-level "model" member, and for an MCP JSON-RPC tools/call request,
// params.name. A truncated prefix gives what a tolerant scan finds whole.
func peekFacts(f *dimensions.Facts, body []byte, complete bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return
	}
	var bf bodyFacts
	if complete {
		if json.Unmarshal(b, &bf) != nil {
			return
		}
	} else {
		bf = scanPrefix(b)
	}
	if f.Model == "" {
		f.Model = bf.Model
	}
	if bf.Method == "tools/call" && f.Tool == "" {
		f.Tool = bf.Params.Name
	}
}

// scanPrefix decodes the members of a truncated JSON object that come
// before the cut, token by token.
func scanPrefix(b []byte) bodyFacts {
	var bf bodyFacts
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var (
		object    [8]bool   // per level: an object (else an array)
		key       [8]string // per level: the member being read
		depth     int
		expectKey bool
	)
	valueDone := func() { expectKey = depth > 0 && depth <= len(object) && object[depth-1] }
	for {
		t, err := dec.Token()
		if err != nil {
			return bf
		}
		switch v := t.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if depth < len(object) {
					object[depth] = v == '{'
					key[depth] = ""
				}
				depth++
				expectKey = v == '{'
			default:
				depth--
				valueDone()
			}
		case string:
			if expectKey {
				if depth <= len(key) {
					key[depth-1] = v
				}
				expectKey = false
				continue
			}
			switch {
			case depth == 1 && key[0] == "model":
				bf.Model = v
			case depth == 1 && key[0] == "method":
				bf.Method = v
			case depth == 2 && object[1] && key[0] == "params" && key[1] == "name":
				bf.Params.Name = v
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// modelFromPath returns the model a Gemini-style path names.
func modelFromPath(path string) string {
	if !strings.Contains(path, "/models/") {
		return ""
	}
	return tokens.ModelFromPath(path)
}

// isJSON reports whether a Content-Type names JSON.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "application/json" || strings.HasSuffix(ct, "+json") || ct == ""
}
