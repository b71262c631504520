package tokens

import (
	"encoding/binary"
	"hash/crc32"
)

// gunzip is a push-style gzip decoder (RFC 1951 inflate inside RFC 1952
// members): Write takes compressed bytes in any slicing and hands the
// decompressed bytes to out as soon as whole symbols are available.
// compress/gzip pulls from a reader and keeps read errors, so using it on a
// stream that arrives through Write needs a goroutine; this decoder needs
// none.
//
// Memory is fixed: the 32 KiB window, up to inChunk bytes of input plus the
// unfinished unit (a symbol, a block header, a member header; at most
// maxPending bytes), and an output buffer of outChunk bytes. Decoding is
// transactional per unit: when the input ends inside a unit, the unit is
// rolled back and retried with more input.
//
// It decodes several members back to back, checks each member's CRC-32 and
// length, and stops for good at the first error (corrupt data, a bad
// checksum, bytes that are not a gzip member); what was decoded before
// stands.
type gunzip struct {
	out func([]byte)

	in   []byte // pending input; in[pos:] is unread
	pos  int
	bits uint64 // bit buffer, least significant bit first
	nb   uint   // bits in the buffer, always < 8 between units

	state   uint8
	final   bool // the current block is the member's last
	stored  int  // bytes left in a stored block
	lit     huffman
	dist    huffman
	fixedOK bool // lit/dist hold the fixed tables

	win  []byte // 32 KiB history
	wpos int
	have int // history bytes available, at most len(win)
	ob   []byte
	crc  uint32
	size uint32
}

const (
	gzHeader uint8 = iota
	gzBlock
	gzStored
	gzHuffman
	gzTrailer
	gzFailed

	winSize    = 1 << 15
	inChunk    = 4 << 10
	outChunk   = 4 << 10
	maxPending = 64 << 10 // a member header with huge name or extra fields fails
)

type huffman struct {
	count  [16]uint16
	symbol [288]uint16
}

// build makes a canonical code from code lengths. It rejects
// over-subscribed codes; incomplete ones are allowed (an unused code then
// fails when it is met).
func (h *huffman) build(lengths []uint8) bool {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l <= 15; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return false
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(sym)
			offs[l]++
		}
	}
	return true
}

// Read-only tables of RFC 1951 section 3.2.5.
var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

func (z *gunzip) write(p []byte) {
	if z.win == nil {
		z.win = make([]byte, winSize)
		z.ob = make([]byte, 0, outChunk)
	}
	for len(p) > 0 && z.state != gzFailed {
		// Drop what was consumed, then add at most inChunk new bytes.
		n := copy(z.in, z.in[z.pos:])
		z.in, z.pos = z.in[:n], 0
		k := min(len(p), inChunk)
		z.in = append(z.in, p[:k]...)
		p = p[k:]
		z.run()
		if len(z.in)-z.pos > maxPending {
			z.state = gzFailed
		}
	}
	z.flush()
}

func (z *gunzip) flush() {
	if len(z.ob) > 0 {
		z.crc = crc32.Update(z.crc, crc32.IEEETable, z.ob)
		z.size += uint32(len(z.ob))
		z.out(z.ob)
		z.ob = z.ob[:0]
	}
}

func (z *gunzip) emit(b byte) {
	z.win[z.wpos] = b
	z.wpos = (z.wpos + 1) & (winSize - 1)
	if z.have < winSize {
		z.have++
	}
	z.ob = append(z.ob, b)
	if len(z.ob) == cap(z.ob) {
		z.flush()
	}
}

// need makes sure n bits (n <= 32) are in the buffer.
func (z *gunzip) need(n uint) bool {
	for z.nb < n {
		if z.pos >= len(z.in) {
			return false
		}
		z.bits |= uint64(z.in[z.pos]) << z.nb
		z.pos++
		z.nb += 8
	}
	return true
}

func (z *gunzip) get(n uint) uint32 {
	v := uint32(z.bits & (1<<n - 1))
	z.bits >>= n
	z.nb -= n
	return v
}

type mark struct {
	pos  int
	bits uint64
	nb   uint
}

func (z *gunzip) mark() mark    { return mark{z.pos, z.bits, z.nb} }
func (z *gunzip) rewind(m mark) { z.pos, z.bits, z.nb = m.pos, m.bits, m.nb }
func (z *gunzip) align()        { z.bits, z.nb = 0, 0 } // drop the < 8 bits left of a byte
func (z *gunzip) avail() []byte { return z.in[z.pos:] }
func (z *gunzip) fail()         { z.state = gzFailed }
func (z *gunzip) consume(n int) { z.pos += n }

// decode reads one symbol of h: ok false with more false means the code is
// invalid; more true means the input ended.
func (z *gunzip) decode(h *huffman) (sym int, ok, more bool) {
	code, first, index := 0, 0, 0
	for l := 1; l <= 15; l++ {
		if !z.need(1) {
			return 0, false, true
		}
		code |= int(z.get(1))
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+code-first]), true, false
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, false, false
}

// run decodes as far as the pending input allows.
func (z *gunzip) run() {
	for {
		var progress bool
		switch z.state {
		case gzHeader:
			progress = z.header()
		case gzBlock:
			progress = z.blockHeader()
		case gzStored:
			progress = z.storedData()
		case gzHuffman:
			progress = z.symbols()
		case gzTrailer:
			progress = z.trailer()
		default:
			return
		}
		if !progress {
			return
		}
	}
}

// header reads a member header (RFC 1952 section 2.3).
func (z *gunzip) header() bool {
	b := z.avail()
	if len(b) < 10 {
		if len(b) >= 1 && b[0] != 0x1f || len(b) >= 2 && b[1] != 0x8b || len(b) >= 3 && b[2] != 8 {
			z.fail()
		}
		return false
	}
	if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 || b[3]&0xe0 != 0 {
		z.fail()
		return false
	}
	flg, i := b[3], 10
	if flg&0x04 != 0 { // FEXTRA
		if len(b) < i+2 {
			return false
		}
		i += 2 + int(binary.LittleEndian.Uint16(b[i:]))
	}
	for _, f := range []byte{0x08, 0x10} { // FNAME, FCOMMENT: zero-terminated
		if flg&f == 0 {
			continue
		}
		for {
			if i >= len(b) {
				return false
			}
			i++
			if b[i-1] == 0 {
				break
			}
		}
	}
	if flg&0x02 != 0 { // FHCRC
		i += 2
	}
	if i > len(b) {
		return false
	}
	z.consume(i)
	z.crc, z.size, z.have = 0, 0, 0
	z.state = gzBlock
	return true
}

func (z *gunzip) blockHeader() bool {
	m := z.mark()
	if !z.need(3) {
		return false
	}
	z.final = z.get(1) == 1
	switch z.get(2) {
	case 0:
		z.align()
		b := z.avail()
		if len(b) < 4 {
			z.rewind(m)
			return false
		}
		n, nn := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
		if n != ^nn {
			z.fail()
			return false
		}
		z.consume(4)
		z.stored = int(n)
		z.state = gzStored
	case 1:
		if !z.fixedOK {
			var l [288]uint8
			for i := range l {
				switch {
				case i < 144:
					l[i] = 8
				case i < 256:
					l[i] = 9
				case i < 280:
					l[i] = 7
				default:
					l[i] = 8
				}
			}
			var d [30]uint8
			for i := range d {
				d[i] = 5
			}
			z.lit.build(l[:])
			z.dist.build(d[:])
			z.fixedOK = true
		}
		z.state = gzHuffman
	case 2:
		ok, more := z.dynamic()
		if more {
			z.rewind(m)
			return false
		}
		if !ok {
			z.fail()
			return false
		}
		z.fixedOK = false
		z.state = gzHuffman
	default:
		z.fail()
		return false
	}
	return true
}

// dynamic reads the code lengths of a dynamic block (RFC 1951 3.2.7).
func (z *gunzip) dynamic() (ok, more bool) {
	if !z.need(14) {
		return false, true
	}
	nlen, ndist, ncode := int(z.get(5))+257, int(z.get(5))+1, int(z.get(4))+4
	if nlen > 286 || ndist > 30 {
		return false, false
	}
	var lengths [320]uint8
	for i := 0; i < ncode; i++ {
		if !z.need(3) {
			return false, true
		}
		lengths[clOrder[i]] = uint8(z.get(3))
	}
	var lencode huffman
	if !lencode.build(lengths[:19]) {
		return false, false
	}
	lengths = [320]uint8{}
	for i := 0; i < nlen+ndist; {
		sym, ok, more := z.decode(&lencode)
		if !ok {
			return false, more
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var val uint8
		var n int
		switch sym {
		case 16:
			if i == 0 {
				return false, false
			}
			if !z.need(2) {
				return false, true
			}
			val, n = lengths[i-1], 3+int(z.get(2))
		case 17:
			if !z.need(3) {
				return false, true
			}
			n = 3 + int(z.get(3))
		default:
			if !z.need(7) {
				return false, true
			}
			n = 11 + int(z.get(7))
		}
		if i+n > nlen+ndist {
			return false, false
		}
		for ; n > 0; n-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 || !z.lit.build(lengths[:nlen]) || !z.dist.build(lengths[nlen:nlen+ndist]) {
		return false, false
	}
	return true, false
}

func (z *gunzip) storedData() bool {
	b := z.avail()
	n := min(z.stored, len(b))
	for _, c := range b[:n] {
		z.emit(c)
	}
	z.consume(n)
	z.stored -= n
	if z.stored > 0 {
		return false
	}
	z.endBlock()
	return true
}

func (z *gunzip) endBlock() {
	if z.final {
		z.align()
		z.state = gzTrailer
	} else {
		z.state = gzBlock
	}
}

func (z *gunzip) symbols() bool {
	for {
		m := z.mark()
		sym, ok, more := z.decode(&z.lit)
		if !ok {
			z.rewind(m)
			if !more {
				z.fail()
			}
			return false
		}
		if sym < 256 {
			z.emit(byte(sym))
			continue
		}
		if sym == 256 {
			z.endBlock()
			return true
		}
		sym -= 257
		if sym >= len(lenBase) {
			z.fail()
			return false
		}
		if !z.need(uint(lenExtra[sym])) {
			z.rewind(m)
			return false
		}
		length := int(lenBase[sym]) + int(z.get(uint(lenExtra[sym])))
		ds, ok, more := z.decode(&z.dist)
		if !ok {
			z.rewind(m)
			if !more {
				z.fail()
			}
			return false
		}
		if ds >= len(dstBase) {
			z.fail()
			return false
		}
		if !z.need(uint(dstExtra[ds])) {
			z.rewind(m)
			return false
		}
		d := int(dstBase[ds]) + int(z.get(uint(dstExtra[ds])))
		if d > z.have {
			z.fail()
			return false
		}
		for ; length > 0; length-- {
			z.emit(z.win[(z.wpos-d)&(winSize-1)])
		}
	}
}

// trailer checks a member's CRC-32 and length, then expects another member.
func (z *gunzip) trailer() bool {
	b := z.avail()
	if len(b) < 8 {
		return false
	}
	z.flush()
	if binary.LittleEndian.Uint32(b) != z.crc || binary.LittleEndian.Uint32(b[4:]) != z.size {
		z.fail()
		return false
	}
	z.consume(8)
	z.state = gzHeader
	return true
}
