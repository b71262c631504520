package tokens

import (
	"bytes"
	"encoding/binary"
)

// Usage snapshots are cumulative and the last valid one wins, so most SSE
// events that carry usage are overwritten by a later one. Instead of
// decoding each as it arrives, the Meter keeps the data of recent
// candidate events (those mayCarryUsage accepts) in a small buffer, and
// decodes the buffer newest first when it fills or the body ends: the
// newest event that replaces the snapshot ends the walk, and the older
// ones are only read if they may mark an error. The result is the one a
// forward decoding gives; only the work differs.

// maxPendingEvents bounds the buffered candidate events, in bytes (and never
// more than MaxEventBytes).
const maxPendingEvents = 16 << 10

// pendLen is the size of the length trailer after each buffered event.
const pendLen = 4

// deferEvent buffers one candidate event's data, decoding the buffer first
// when it is full; an event larger than the buffer is decoded at once.
func (m *Meter) deferEvent(data []byte) {
	limit := min(maxPendingEvents, m.cfg.maxEvent)
	if len(m.pend)+len(data)+pendLen > limit {
		m.flushPending()
		if len(data)+pendLen > limit {
			m.t.applyJSON(data)
			return
		}
	}
	if need := len(m.pend) + len(data) + pendLen; need > cap(m.pend) {
		// Grow within limit. Most streams carry one to three usage events:
		// the first buffer is sized for a few.
		c := max(need, 2*cap(m.pend), min(1024, limit/4), 4*(len(data)+pendLen))
		m.pend = append(make([]byte, 0, min(c, limit)), m.pend...)
	}
	m.pend = append(m.pend, data...)
	m.pend = binary.LittleEndian.AppendUint32(m.pend, uint32(len(data)))
}

var (
	markError  = []byte(`"error"`)
	markFailed = []byte(`"response.failed"`)
)

// flushPending applies the buffered events to the tracker, as if each had
// been applied in order.
func (m *Meter) flushPending() {
	b := m.pend
	m.pend = m.pend[:0]
	var (
		acc      snapshot // merges newer than the walk's position, folded
		merged   bool
		replaced bool
		base     snapshot // the newest replacing snapshot
	)
	for len(b) > 0 {
		n := int(binary.LittleEndian.Uint32(b[len(b)-pendLen:]))
		doc := b[len(b)-pendLen-n : len(b)-pendLen]
		b = b[:len(b)-pendLen-n]
		if replaced {
			// Older than the snapshot that stands: only an error mark counts.
			if m.t.sawError || (!bytes.Contains(doc, markError) && !bytes.Contains(doc, markFailed)) {
				continue
			}
		}
		mem, ok := readMembers(doc)
		if !ok {
			continue
		}
		kind, s, isErr := classify(&mem)
		if isErr {
			m.t.sawError = true
		}
		if replaced {
			continue
		}
		switch kind {
		case effReplace:
			base, replaced = s, true
		case effMerge:
			// A newer merge wins over this one: take only the fields acc lacks.
			for f := field(0); f < numFields; f++ {
				if s.has(f) && !acc.has(f) {
					acc.put(f, s.v[f])
				}
			}
			merged = true
		}
	}
	if replaced {
		m.t.snap, m.t.ok = base, true
	}
	if merged {
		m.t.snap.merge(&acc)
		m.t.ok = true
	}
}
