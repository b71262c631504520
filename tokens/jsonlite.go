package tokens

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small zero-allocation JSON reader for the usage hot
// path. It checks structure (balanced and matching brackets, terminated
// strings, number and literal syntax, nothing after the document) but not
// string contents (escapes and control characters are not validated), and
// it never decodes escapes: keys are compared as raw bytes.

// maxDepth bounds nesting; deeper documents are rejected.
const maxDepth = 64

type liteParser struct {
	b     []byte
	i     int
	depth int
}

// eachMember calls fn for each member of the JSON object doc, with the raw
// key (quotes removed, escapes kept) and the raw value. It reports whether
// doc is one well-formed object, surrounding whitespace allowed; fn may
// have been called before a syntax error is found, so callers apply what
// they collected only when it reports true.
func eachMember(doc []byte, fn func(key, val []byte)) bool {
	p := liteParser{b: doc}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	if !p.object(fn) {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

func (p *liteParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *liteParser) value() bool {
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(nil)
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	}
	return false
}

// object reads an object at p.i ('{'), calling fn for its members when fn
// is not nil.
func (p *liteParser) object(fn func(key, val []byte)) bool {
	if p.depth++; p.depth > maxDepth {
		return false
	}
	p.i++ // '{'
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return true
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		ks := p.i
		if !p.str() {
			return false
		}
		key := p.b[ks+1 : p.i-1]
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.ws()
		vs := p.i
		if !p.value() {
			return false
		}
		if fn != nil {
			fn(key, p.b[vs:p.i])
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			p.depth--
			return true
		default:
			return false
		}
	}
}

func (p *liteParser) array() bool {
	if p.depth++; p.depth > maxDepth {
		return false
	}
	p.i++ // '['
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return true
	}
	for {
		if !p.value() {
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			p.depth--
			return true
		default:
			return false
		}
	}
}

// str skips a string starting at p.i ('"').
func (p *liteParser) str() bool {
	i := p.i + 1
	for {
		j := bytes.IndexByte(p.b[i:], '"')
		if j < 0 {
			return false
		}
		// The quote is escaped when an odd number of backslashes precede it.
		k := i + j
		n := 0
		for k-1-n >= i && p.b[k-1-n] == '\\' {
			n++
		}
		i = k + 1
		if n%2 == 0 {
			p.i = i
			return true
		}
	}
}

func (p *liteParser) number() bool {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start || (b[start] == '0' && i-start > 1) {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	p.i = i
	return true
}

func (p *liteParser) lit(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// member returns the raw value of the member key of object doc; ok is
// false when doc is not a well-formed object or has no such member.
func member(doc []byte, key string) (val []byte, ok bool) {
	valid := eachMember(doc, func(k, v []byte) {
		if string(k) == key {
			val, ok = v, true
		}
	})
	return val, ok && valid
}

// eachElement calls fn for each element of the JSON array doc. It reports
// whether doc is one well-formed array.
func eachElement(doc []byte, fn func(val []byte)) bool {
	p := liteParser{b: doc}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return false
	}
	p.i++
	p.depth++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
	} else {
		for {
			p.ws()
			vs := p.i
			if !p.value() {
				return false
			}
			fn(p.b[vs:p.i])
			p.ws()
			if p.i >= len(p.b) {
				return false
			}
			if p.b[p.i] == ']' {
				p.i++
				break
			}
			if p.b[p.i] != ',' {
				return false
			}
			p.i++
		}
	}
	p.ws()
	return p.i == len(p.b)
}

// unquote decodes the JSON string raw (quotes included) into buf and
// returns the text; without escapes it returns a sub-slice of raw and buf
// is untouched. ok is false when raw is not a string.
func unquote(raw, buf []byte) (text, newBuf []byte, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, buf, false
	}
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, buf, true
	}
	buf = buf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			buf = append(buf, c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			buf = append(buf, '\n')
		case 't':
			buf = append(buf, '\t')
		case 'r':
			buf = append(buf, '\r')
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'u':
			r, n := hex4(s[i+1:])
			if n == 0 {
				buf = append(buf, '\\', 'u')
				continue
			}
			i += n
			if utf16.IsSurrogate(r) {
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, n2 := hex4(s[i+3:]); n2 > 0 {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
							i += 2 + n2
						}
					}
				}
			}
			buf = utf8.AppendRune(buf, r)
		default: // \" \\ \/ and anything else
			buf = append(buf, s[i])
		}
	}
	return buf, buf, true
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}
