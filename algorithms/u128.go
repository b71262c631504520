package algorithms

import "math/bits"

// u128 is an unsigned 128-bit integer for the few products that can pass
// 64 bits (a limit of 2^53 times a period of a year in microseconds).
type u128 struct{ hi, lo uint64 }

func mul(a, b int64) u128 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return u128{hi, lo}
}

func (x u128) add(y int64) u128 {
	lo, carry := bits.Add64(x.lo, uint64(y), 0)
	return u128{x.hi + carry, lo}
}

func (x u128) plus(y u128) u128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	return u128{x.hi + y.hi + carry, lo}
}

// minus returns x-y; callers ensure x >= y.
func (x u128) minus(y u128) u128 {
	lo, borrow := bits.Sub64(x.lo, y.lo, 0)
	return u128{x.hi - y.hi - borrow, lo}
}

func (x u128) cmp(y u128) int {
	switch {
	case x.hi < y.hi:
		return -1
	case x.hi > y.hi:
		return 1
	case x.lo < y.lo:
		return -1
	case x.lo > y.lo:
		return 1
	}
	return 0
}

// mul64 returns x*y for y >= 0; callers ensure it fits 128 bits.
func (x u128) mul64(y int64) u128 {
	hi, lo := bits.Mul64(x.lo, uint64(y))
	return u128{hi + x.hi*uint64(y), lo}
}

// quo divides x by d > 0 with a 128-bit quotient.
func (x u128) quo(d int64) (q u128, r int64) {
	ud := uint64(d)
	qhi, rhi := bits.Div64(0, x.hi, ud)
	qlo, rem := bits.Div64(rhi, x.lo, ud)
	return u128{qhi, qlo}, int64(rem)
}

// divmod divides x by d > 0. The quotient saturates at maxInt64.
func (x u128) divmod(d int64) (q, r int64) {
	ud := uint64(d)
	if x.hi == 0 {
		// 64 bits: one DIV gives both (the compiler shares it).
		q, r := x.lo/ud, x.lo%ud
		if q > maxInt64 {
			return maxInt64, int64(r)
		}
		return int64(q), int64(r)
	}
	qhi, rhi := bits.Div64(0, x.hi, ud)
	qlo, rem := bits.Div64(rhi, x.lo, ud)
	if qhi != 0 || qlo > maxInt64 {
		return maxInt64, int64(rem)
	}
	return int64(qlo), int64(rem)
}

// divCeil returns ceil(x/d) for d > 0, saturating at maxInt64.
func (x u128) divCeil(d int64) int64 {
	q, r := x.divmod(d)
	if r != 0 && q < maxInt64 {
		q++
	}
	return q
}

const maxInt64 = 1<<63 - 1
