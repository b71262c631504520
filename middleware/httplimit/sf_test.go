package httplimit_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// A strict parser of HTTP structured fields (RFC 9651, which obsoletes RFC
// 8941) for Lists and Items, written from the RFC's parsing algorithms, so
// that the tests hold the middleware's headers to the grammar rather than
// to string comparisons.

type sfToken string
type sfDate int64

type sfParam struct {
	Key   string
	Value any // int64, float64, string, sfToken, []byte, bool, sfDate
}

type sfItem struct {
	Value  any // a bare item, or []sfItem for an inner list
	Params []sfParam
}

// Param returns the value of parameter key.
func (it sfItem) Param(key string) (any, bool) {
	for _, p := range it.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

var errSF = errors.New("sf: parse error")

type sfParser struct {
	s string
	i int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w at %d in %q: %s", errSF, p.i, p.s, what)
}

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) skipSP() {
	for p.peek() == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.peek() == ' ' || p.peek() == '\t' {
		p.i++
	}
}

// combine joins field lines as RFC 9651 section 4.2 says, after checking
// that they are ASCII.
func sfCombine(lines []string) (string, error) {
	s := strings.Join(lines, ", ")
	for i := 0; i < len(s); i++ {
		if s[i] > 0x7e || (s[i] < 0x20 && s[i] != '\t') {
			return "", fmt.Errorf("%w: non-ASCII or control byte %#x", errSF, s[i])
		}
	}
	return strings.Trim(s, " "), nil
}

// parseSFList parses a List field.
func parseSFList(lines []string) ([]sfItem, error) {
	s, err := sfCombine(lines)
	if err != nil {
		return nil, err
	}
	p := &sfParser{s: s}
	var out []sfItem
	for !p.eof() {
		it, err := p.itemOrInnerList()
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, p.fail("expected ','")
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, p.fail("trailing comma")
		}
	}
	return out, nil
}

// parseSFItem parses an Item field.
func parseSFItem(lines []string) (sfItem, error) {
	s, err := sfCombine(lines)
	if err != nil {
		return sfItem{}, err
	}
	p := &sfParser{s: s}
	it, err := p.item()
	if err != nil {
		return sfItem{}, err
	}
	if !p.eof() {
		return sfItem{}, p.fail("trailing characters")
	}
	return it, nil
}

func (p *sfParser) itemOrInnerList() (sfItem, error) {
	if p.peek() != '(' {
		return p.item()
	}
	p.i++
	var inner []sfItem
	for {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			params, err := p.params()
			return sfItem{Value: inner, Params: params}, err
		}
		it, err := p.item()
		if err != nil {
			return sfItem{}, err
		}
		inner = append(inner, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return sfItem{}, p.fail("inner list: expected SP or ')'")
		}
	}
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.params()
	return sfItem{Value: v, Params: params}, err
}

func (p *sfParser) params() ([]sfParam, error) {
	var out []sfParam
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		replaced := false
		for j := range out {
			if out[j].Key == k {
				out[j].Value, replaced = v, true
			}
		}
		if !replaced {
			out = append(out, sfParam{k, v})
		}
	}
	return out, nil
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || 'A' <= c && c <= 'Z' }
func isTChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *sfParser) key() (string, error) {
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", p.fail("key must start with lcalpha or '*'")
	}
	start := p.i
	for c := p.peek(); isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'; c = p.peek() {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bareItem() (any, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		start := p.i
		p.i++
		for c := p.peek(); isTChar(c) || c == ':' || c == '/'; c = p.peek() {
			p.i++
		}
		return sfToken(p.s[start:p.i]), nil
	case c == ':':
		p.i++
		end := strings.IndexByte(p.s[p.i:], ':')
		if end < 0 {
			return nil, p.fail("unterminated byte sequence")
		}
		b, err := base64.StdEncoding.Strict().DecodeString(p.s[p.i : p.i+end])
		if err != nil {
			return nil, p.fail("bad base64")
		}
		p.i += end + 1
		return b, nil
	case c == '?':
		p.i++
		switch p.peek() {
		case '0':
			p.i++
			return false, nil
		case '1':
			p.i++
			return true, nil
		}
		return nil, p.fail("bad boolean")
	case c == '@':
		p.i++
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		n, ok := v.(int64)
		if !ok {
			return nil, p.fail("date must be an integer")
		}
		return sfDate(n), nil
	}
	return nil, p.fail("unknown bare item")
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	if !isDigit(p.peek()) {
		return nil, p.fail("expected digit")
	}
	digits, dot := 0, -1
	for {
		c := p.peek()
		if isDigit(c) {
			p.i++
			digits++
		} else if c == '.' && dot < 0 {
			if digits > 12 {
				return nil, p.fail("decimal integer part too long")
			}
			dot = digits
			p.i++
		} else {
			break
		}
		if dot < 0 && digits > 15 || dot >= 0 && digits > 15 {
			return nil, p.fail("number too long")
		}
	}
	text := p.s[start:p.i]
	if dot < 0 {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, p.fail("bad integer")
		}
		return n, nil
	}
	if frac := digits - dot; frac == 0 || frac > 3 {
		return nil, p.fail("decimal needs 1 to 3 fractional digits")
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, p.fail("bad decimal")
	}
	return f, nil
}

func (p *sfParser) str() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() {
				return "", p.fail("escape at end")
			}
			n := p.s[p.i]
			if n != '"' && n != '\\' {
				return "", p.fail("bad escape")
			}
			b.WriteByte(n)
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", p.fail("control character in string")
		default:
			b.WriteByte(c)
		}
	}
	return "", p.fail("unterminated string")
}

func TestSFParser(t *testing.T) {
	good := []struct {
		in   string
		list bool
	}{
		{`"default";q=100;w=60`, true},
		{`"a";q=1, "b";q=2;qu="tokens"`, true},
		{`sugar, tea, rum`, true},
		{`(a b);x=?1, c`, true},
		{`1.5;a=:cHJldGVuZA==:`, false},
		{`"x";t=@1659578233`, false},
		{`-42`, false},
	}
	for _, c := range good {
		var err error
		if c.list {
			_, err = parseSFList([]string{c.in})
		} else {
			_, err = parseSFItem([]string{c.in})
		}
		if err != nil {
			t.Errorf("parse %q: %v", c.in, err)
		}
	}
	bad := []string{
		`"a";q=1,`,               // trailing comma
		`"a";Q=1`,                // upper-case key
		`"a";q=1.2345`,           // 4 fractional digits
		`"a";q=1234567890123456`, // 16 digits
		`"a\x";q=1`,              // bad escape
		`"unterminated`,
		`a;q=`,
		`"a" "b"`,
		"\"caf\u00e9\"",
		`1.`,
	}
	for _, in := range bad {
		if _, err := parseSFList([]string{in}); err == nil {
			t.Errorf("parse %q: no error, want one", in)
		}
	}
}
