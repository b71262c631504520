package tokens

import "bytes"

// sseFramer splits a server-sent-events byte stream into events, following
// the WHATWG event-stream rules: lines end in CRLF, LF or a lone CR (also
// when the pair is split between two writes); a leading BOM is dropped;
// comment lines and fields other than data are ignored; several data lines
// are joined with LF; a blank line dispatches; an event not terminated
// before the end is never dispatched.
//
// Memory is bounded by max: a line or an event's data longer than max bytes
// is dropped (the event is skipped), never buffered. A data line found
// whole inside one write is not copied unless the event is still open when
// the write returns.
type sseFramer struct {
	max     int
	onEvent func(data []byte)

	line     []byte // a line carried over from the previous write
	lineSkip bool   // the carried line was too long: drop it up to its end
	skipLF   bool   // the previous write ended with CR: skip one leading LF
	started  bool   // the first line was seen (BOM handling)

	data     []byte // the open event's data, owned
	ref      []byte // the open event's single data line, aliasing the caller's slice
	hasData  bool
	useRef   bool
	dataOver bool

	// With marks set, the framer also finds usage marks (see mayCarryUsage)
	// in the data lines it sees whole, with one search for 'g' per write
	// instead of one per event: a search from each event's start that
	// finds no 'g' costs as much as one that finds one.
	marks   bool
	cur     []byte    // the write in progress, for the mark search
	g       int       // offset in cur of the next 'g' at or after the last search start, or -1
	refMark usageMark // the usage mark of ref
	// eventMark is, while onEvent runs, what is known of the event's usage mark.
	eventMark usageMark
}

// usageMark is what the framer knows of an event's usage mark.
type usageMark uint8

const (
	markUnknown usageMark = iota // not searched: call mayCarryUsage
	markAbsent                   // mayCarryUsage would report false
	markPresent                  // mayCarryUsage would report true
)

func (f *sseFramer) write(p []byte) {
	if f.skipLF && len(p) > 0 {
		f.skipLF = false
		if p[0] == '\n' {
			p = p[1:]
		}
	}
	q := p // p[0] is at offset len(q)-len(p) in q
	if f.marks {
		f.cur, f.g = q, -1
	}
	// cr is the offset in p of the next CR, or len(p): one pass finds every
	// CR, so LF-only streams pay a single scan for them.
	cr := -1
	for len(p) > 0 {
		if cr < 0 {
			if cr = bytes.IndexByte(p, '\r'); cr < 0 {
				cr = len(p)
			}
		}
		// A blank line right after a line end (the usual event end) needs no
		// search; p[0] is LF only when cr > 0, so this is what IndexByte says.
		n := 0
		if p[0] != '\n' {
			n = bytes.IndexByte(p[:cr], '\n')
		}
		var line []byte
		adv := 0
		switch {
		case n >= 0:
			line, adv = p[:n], n+1
		case cr < len(p):
			line, adv = p[:cr], cr+1
			if cr+1 < len(p) {
				if p[cr+1] == '\n' {
					adv++
				}
			} else {
				f.skipLF = true
			}
		default:
			f.carry(p)
			p = nil
			continue
		}
		cr -= adv
		if cr < 0 {
			cr = -1
		}
		off := len(q) - len(p)
		p = p[adv:]
		switch {
		case f.lineSkip:
			f.lineSkip = false
			f.line = f.line[:0]
		case len(f.line) > 0:
			if len(f.line)+len(line) > f.max+lineSlack {
				f.overlong()
				f.line = f.line[:0]
				continue
			}
			f.line = append(f.line, line...)
			f.processLine(f.line, -1)
			f.line = f.line[:0]
		case len(line) == 0 && f.started:
			f.dispatch() // the usual event end, without a call to processLine
		default:
			f.processLine(line, off)
		}
	}
	if f.useRef {
		// Never keep the caller's slice past the write.
		f.data = append(f.data[:0], f.ref...)
		f.ref, f.useRef = nil, false
	}
	f.cur = nil
}

// carry keeps the unterminated tail of a write for the next one.
func (f *sseFramer) carry(p []byte) {
	if f.lineSkip {
		return
	}
	if len(f.line)+len(p) > f.max+lineSlack {
		f.overlong()
		f.line = f.line[:0]
		f.lineSkip = true
		return
	}
	f.line = append(f.line, p...)
}

// lineSlack lets a carried line hold a field name, colon, space and BOM on
// top of a max-byte value, so that a value is kept or dropped the same
// whether or not its line was split between writes.
const lineSlack = 16

// overlong drops a carried line longer than max+lineSlack; if it was a
// data line, the whole event is skipped.
func (f *sseFramer) overlong() {
	l := f.line
	if !f.started {
		l = bytes.TrimPrefix(l, bom)
	}
	if c := bytes.IndexByte(l, ':'); c >= 0 && string(l[:c]) == "data" {
		f.dropData()
	}
	f.started = true
}

var bom = []byte("\xEF\xBB\xBF")

// processLine handles one line; off is its offset in the write in
// progress, or -1 when the line is owned (carried over from earlier writes).
func (f *sseFramer) processLine(line []byte, off int) {
	n := len(line)
	if !f.started {
		f.started = true
		line = bytes.TrimPrefix(line, bom)
	}
	if len(line) == 0 {
		f.dispatch()
		return
	}
	if line[0] == ':' {
		return
	}
	// The field name is what precedes the first colon (or the whole line):
	// it is "data" only for a line that starts with "data:" or is "data".
	if len(line) >= 5 && string(line[:5]) == "data:" {
		value := line[5:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if off >= 0 {
			off += n - len(value)
		}
		f.addData(value, off)
	} else if string(line) == "data" {
		f.addData(nil, -1)
	}
}

// markIn returns the usage mark of the data line value cur[s:e], as
// mayCarryUsage(cur[s:e]) would report it.
func (f *sseFramer) markIn(s, e int) usageMark {
	p := f.cur
	for from := s; ; {
		if f.g < from {
			// f.g, when not below from, was found by a search that started at
			// or before from: there is no 'g' in [from, f.g).
			j := bytes.IndexByte(p[from:], 'g')
			if j < 0 {
				f.g = len(p)
				return markAbsent
			}
			f.g = from + j
		}
		g := f.g
		if g+1 >= e {
			return markAbsent // 'g' must be followed by 'e' inside the value
		}
		if g-3 >= s && p[g+1] == 'e' && p[g-1] == 'a' && p[g-2] == 's' && p[g-3] == 'u' &&
			nonNullAfter(p[g+2:e]) {
			return markPresent
		}
		from = g + 1
	}
}

// addData adds one data line's value; off is its offset in the write in
// progress, or -1 when v is owned.
func (f *sseFramer) addData(v []byte, off int) {
	if f.dataOver {
		return
	}
	if !f.hasData {
		f.hasData = true
		if len(v) > f.max {
			f.dropData()
			return
		}
		if off < 0 {
			f.data = append(f.data[:0], v...)
		} else {
			f.ref, f.useRef = v, true
			f.refMark = markUnknown
			if f.marks {
				f.refMark = f.markIn(off, off+len(v))
			}
		}
		return
	}
	if f.useRef {
		f.data = append(f.data[:0], f.ref...)
		f.ref, f.useRef = nil, false
	}
	if len(f.data)+1+len(v) > f.max {
		f.dropData()
		return
	}
	f.data = append(f.data, '\n')
	f.data = append(f.data, v...)
}

func (f *sseFramer) dropData() {
	f.hasData, f.dataOver = true, true
	f.data = f.data[:0]
	f.ref, f.useRef = nil, false
}

func (f *sseFramer) dispatch() {
	if f.hasData && !f.dataOver {
		d, mk := f.data, markUnknown
		if f.useRef {
			d, mk = f.ref, f.refMark
		}
		if len(d) > 0 {
			f.eventMark = mk
			f.onEvent(d)
			f.eventMark = markUnknown
		}
	}
	f.data = f.data[:0]
	f.ref, f.useRef = nil, false
	f.hasData, f.dataOver = false, false
}
