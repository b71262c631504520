package redis

import "github.com/tollgate-go/tollgate/store"

// slotCount is the number of Redis Cluster hash slots.
const slotCount = 16384

// crcTable is CRC16-CCITT (XMODEM), the checksum of Redis Cluster key slots.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// keySlot returns the Cluster slot of a Redis key: CRC16 of its hash tag
// (the part between the first '{' and the next '}', when not empty), or of
// the whole key, modulo 16384.
func keySlot[S ~string | ~[]byte](key S) int {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					goto hash
				}
			}
			break
		}
	}
hash:
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^key[i]]
	}
	return int(crc) % slotCount
}

// opSlot returns the slot of op key k's Redis key, built in buf.
func (s *Store) opSlot(buf []byte, k string) (int, []byte) {
	buf = s.appendKey(buf[:0], k)
	return keySlot(buf), buf
}

// oneSlot reports whether every op's key hashes to the same slot.
func (s *Store) oneSlot(ops []store.Op) bool {
	var arr [256]byte
	first, buf := s.opSlot(arr[:0], ops[0].Key)
	for i := 1; i < len(ops); i++ {
		var slot int
		slot, buf = s.opSlot(buf, ops[i].Key)
		if slot != first {
			return false
		}
	}
	return true
}
