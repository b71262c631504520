package dimensions

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// Dimension names one fact about a request. The predefined dimensions are
// the constants below; any other name is a custom attribute, looked up in
// [Facts.Custom].
type Dimension string

// The predefined dimensions, spelled as policy files spell them.
const (
	User     Dimension = "user"
	Tenant   Dimension = "tenant"
	APIKey   Dimension = "api_key"
	Model    Dimension = "model"
	Tool     Dimension = "tool"
	Route    Dimension = "route"
	ClientIP Dimension = "client_ip"
)

// Predefined lists the predefined dimensions.
var Predefined = []Dimension{User, Tenant, APIKey, Model, Tool, Route, ClientIP}

// Facts are what is known about one request. The zero Facts knows nothing.
// Facts are plain data: the limiter only reads them.
type Facts struct {
	User     string
	Tenant   string
	APIKey   string // the raw key; it is hashed whenever it becomes part of a counter key
	Model    string
	Tool     string
	Route    string
	ClientIP string
	Method   string            // the HTTP method or gRPC full method, for predicates
	Custom   map[string]string // custom attributes, by name
}

// Get returns the value of d and whether the request has one (a non-empty
// value).
func (f *Facts) Get(d Dimension) (string, bool) {
	var v string
	switch d {
	case User:
		v = f.User
	case Tenant:
		v = f.Tenant
	case APIKey:
		v = f.APIKey
	case Model:
		v = f.Model
	case Tool:
		v = f.Tool
	case Route:
		v = f.Route
	case ClientIP:
		v = f.ClientIP
	default:
		v = f.Custom[string(d)]
	}
	return v, v != ""
}

// MaxRawLen is the longest value, in bytes, stored raw in a key; longer
// values are hashed.
const MaxRawLen = 256

// AppendKey appends to dst the counter key of the rule named prefix for the
// values of dims in f, and returns the extended buffer. It does not
// allocate when dst has room. The encoding is
//
//	prefix ( "|" name "=" value )*
//
// where name and value are escaped (every byte of "|=%#" and every byte
// below 0x20 becomes %XX), and a value that is unsafe to keep raw, or any
// API key, is written as "#" followed by 32 hex digits of its SHA-256. The
// prefix is written as given: callers pass a fixed rule name.
func AppendKey(dst []byte, prefix string, dims []Dimension, f *Facts) []byte {
	dst = append(dst, prefix...)
	for _, d := range dims {
		v, _ := f.Get(d)
		dst = append(dst, '|')
		if plain(string(d)) {
			dst = append(dst, d...)
		} else {
			dst = appendEscaped(dst, string(d))
		}
		dst = append(dst, '=')
		dst = AppendValue(dst, d, v)
	}
	return dst
}

// AppendValue appends the encoding of one value of dimension d, as
// AppendKey writes it.
func AppendValue(dst []byte, d Dimension, v string) []byte {
	if d == APIKey {
		return appendHash(dst, v)
	}
	if plain(v) {
		// The common case, in one pass: safe, and nothing to escape.
		return append(dst, v...)
	}
	if !safe(v) {
		return appendHash(dst, v)
	}
	return appendEscaped(dst, v)
}

// plainByte marks the bytes a plain value may hold: printable ASCII but
// the escaped "|=%#".
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '|' && c != '=' && c != '%' && c != '#'
	}
	return t
}()

// plain reports whether v is written as it is: at most MaxRawLen bytes,
// each a plainByte. Such a value is safe (ASCII is valid UTF-8, and has no
// CR, LF or NUL) and appendEscaped leaves it unchanged.
func plain(v string) bool {
	if len(v) > MaxRawLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !plainByte[v[i]] {
			return false
		}
	}
	return true
}

// safe reports whether v may be stored raw.
func safe(v string) bool {
	if len(v) > MaxRawLen || !utf8.ValidString(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

func appendHash(dst []byte, v string) []byte {
	sum := sha256.Sum256([]byte(v))
	dst = append(dst, '#')
	return hex.AppendEncode(dst, sum[:16])
}

const hexDigits = "0123456789ABCDEF"

func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '|' || c == '=' || c == '%' || c == '#' {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
