package tokens

import "bytes"

// jsonScanner reads a sequence of JSON documents incrementally (one JSON
// body, NDJSON, concatenated JSON, or a top-level array of objects as in
// Gemini's non-SSE stream) and captures the raw value of selected top-level
// members without buffering anything else. When a document (or an element
// of a top-level array) ends, onDoc receives the captured values.
//
// The scanner is lenient: it tracks only strings and nesting. The captured
// values are validated by whoever decodes them. Memory is bounded: a key
// longer than the longest wanted key is not wanted, and a captured value
// longer than maxValue bytes is dropped (reported as truncated).
type jsonScanner struct {
	keys     []string // wanted member names
	maxValue int
	onDoc    func(vals [][]byte, truncated []bool)

	vals  [][]byte // captured value per wanted key (buffers are reused)
	got   []bool   // the key was present in this document
	trunc []bool   // the value was longer than maxValue and dropped
	out   [][]byte // what onDoc receives: vals, nil where absent
	any   bool     // some member was captured in this document

	depth    int
	kinds    [2]byte // container kind at depth 1 and 2
	inString bool
	escape   bool
	state    uint8
	key      [32]byte
	keyLen   int // -1: too long
	capture  int // index into keys of the value being captured, or -1
}

const (
	stNone      uint8 = iota // not at member level, or inside a value
	stWantKey                // at member level, expecting a key or '}'
	stInKey                  // reading a key string
	stWantColon              // key read, expecting ':'
)

func newJSONScanner(keys []string, maxValue int, onDoc func([][]byte, []bool)) *jsonScanner {
	return &jsonScanner{
		keys: keys, maxValue: maxValue, onDoc: onDoc,
		vals: make([][]byte, len(keys)), got: make([]bool, len(keys)),
		trunc: make([]bool, len(keys)), out: make([][]byte, len(keys)), capture: -1,
	}
}

// memberLevel is the depth at which wanted members live: 1 for a top-level
// object, 2 for objects inside a top-level array; 0 when neither.
func (s *jsonScanner) memberLevel() int {
	switch {
	case s.depth >= 1 && s.kinds[0] == '{':
		return 1
	case s.depth >= 2 && s.kinds[0] == '[' && s.kinds[1] == '{':
		return 2
	}
	return 0
}

func (s *jsonScanner) emit(c byte) {
	if s.capture < 0 || s.trunc[s.capture] {
		return
	}
	v := s.vals[s.capture]
	if len(v) >= s.maxValue {
		s.trunc[s.capture] = true
		s.vals[s.capture] = v[:0]
		return
	}
	s.vals[s.capture] = append(v, c)
}

func (s *jsonScanner) write(p []byte) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if s.inString {
			if s.escape {
				s.escape = false
				s.keyByte(c)
				s.emit(c)
				continue
			}
			if s.capture < 0 && s.state != stInKey {
				// Fast path: skip to the closing quote when no escape intervenes.
				j := bytes.IndexByte(p[i:], '"')
				seg := p[i:]
				if j >= 0 {
					seg = p[i : i+j]
				}
				if bytes.IndexByte(seg, '\\') < 0 {
					if j < 0 {
						return
					}
					i += j
					c = '"'
				}
			}
			switch c {
			case '\\':
				s.escape = true
				s.keyByte(c)
				s.emit(c)
			case '"':
				s.inString = false
				if s.state == stInKey {
					s.state = stWantColon
				} else {
					s.emit(c)
				}
			default:
				s.keyByte(c)
				s.emit(c)
			}
			continue
		}
		ml := s.memberLevel()
		switch c {
		case '"':
			s.inString = true
			if s.depth == ml && s.state == stWantKey {
				s.state = stInKey
				s.keyLen = 0
				continue
			}
			s.emit(c)
		case '{', '[':
			s.emit(c)
			s.depth++
			if s.depth <= 2 {
				s.kinds[s.depth-1] = c
			}
			if c == '{' && s.depth == s.memberLevel() {
				s.state = stWantKey
			}
		case '}', ']':
			if s.depth == 0 {
				continue // stray closer between documents
			}
			if s.depth == ml {
				s.capture = -1
				s.state = stNone
			} else {
				s.emit(c)
			}
			s.depth--
			if ml > 0 && s.depth == ml-1 {
				s.endDoc()
			} else if s.depth == 0 {
				s.reset()
			}
		case ',':
			if s.depth == ml && ml > 0 {
				s.capture = -1
				s.state = stWantKey
				continue
			}
			s.emit(c)
		case ':':
			if s.depth == ml && s.state == stWantColon {
				s.state = stNone
				s.capture = s.wanted()
				if s.capture >= 0 {
					s.any = true
					s.got[s.capture] = true
					s.vals[s.capture] = s.vals[s.capture][:0]
					s.trunc[s.capture] = false
				}
				continue
			}
			s.emit(c)
		case ' ', '\t', '\r', '\n':
			if s.capture >= 0 && len(s.vals[s.capture]) > 0 {
				s.emit(c)
			}
		default:
			s.emit(c)
		}
	}
}

func (s *jsonScanner) keyByte(c byte) {
	if s.state != stInKey || s.keyLen < 0 {
		return
	}
	if s.keyLen == len(s.key) {
		s.keyLen = -1
		return
	}
	s.key[s.keyLen] = c
	s.keyLen++
}

func (s *jsonScanner) wanted() int {
	if s.keyLen < 0 {
		return -1
	}
	k := s.key[:s.keyLen]
	for i, w := range s.keys {
		if string(k) == w {
			return i
		}
	}
	return -1
}

// endDoc hands the captured members of a finished document to onDoc.
func (s *jsonScanner) endDoc() {
	if s.any {
		for i := range s.vals {
			s.out[i] = nil
			if s.got[i] {
				s.out[i] = s.vals[i][:len(s.vals[i]):len(s.vals[i])]
				if s.out[i] == nil {
					s.out[i] = []byte{}
				}
			}
		}
		s.onDoc(s.out, s.trunc)
	}
	for i := range s.vals {
		s.vals[i] = s.vals[i][:0]
		s.got[i] = false
		s.trunc[i] = false
	}
	s.any = false
	s.capture = -1
	s.state = stNone
}

// reset forgets a document that is not made of members (a top-level array
// of non-objects, a scalar).
func (s *jsonScanner) reset() {
	s.endDoc()
}
