//go:build unix

// Package torture drives a netpoll server through the moments where a
// connection's memory changes hands (idle timeouts, deadline failures, peer
// resets, closes from other goroutines) while its handler holds slices from
// Next and Peek and buffers from Malloc, and checks that no connection ever
// sees a byte that is not its own (issue #15).
//
// Every byte a connection carries, in either direction, belongs to its
// canary: an 8-byte unit derived from the connection's id, repeated, so the
// byte at stream offset o is Unit(id)[o%8]. A byte that breaks the pattern
// is foreign, and the unit around it usually names the connection it came
// from.
//
// It uses only the public API of package netpoll, so the same checks run
// against any connection core. The root package's tests and the command in
// examples/torture share it.
package torture

import "fmt"

// UnitSize is the length of one canary unit.
const UnitSize = 8

// The fixed bytes that frame a unit: neither is zero, so fresh (zeroed)
// memory never passes for a canary.
const (
	unitHead = 0xC7
	unitTail = 0x3C
)

// MaxID is the largest connection id a unit can carry.
const MaxID = 1<<24 - 1

// Unit returns the canary unit of connection id (1 ≤ id ≤ MaxID): a frame
// byte, the id's three bytes, their complements, and a frame byte.
func Unit(id uint32) [UnitSize]byte {
	b2, b1, b0 := byte(id>>16), byte(id>>8), byte(id)
	return [UnitSize]byte{unitHead, b2, b1, b0, ^b2, ^b1, ^b0, unitTail}
}

// Fill writes id's canary into p as the bytes at stream offset off onward.
func Fill(p []byte, id uint32, off int64) {
	u := Unit(id)
	k := int(off % UnitSize)
	for i := range p {
		p[i] = u[k]
		k++
		if k == UnitSize {
			k = 0
		}
	}
}

// Pattern returns n bytes of id's canary starting at stream offset off.
func Pattern(id uint32, off int64, n int) []byte {
	p := make([]byte, n)
	Fill(p, id, off)
	return p
}

// Mismatch returns the index of the first byte of p that is not id's
// canary at stream offset off onward, or -1 if every byte is.
func Mismatch(p []byte, id uint32, off int64) int {
	u := Unit(id)
	k := int(off % UnitSize)
	for i, b := range p {
		if b != u[k] {
			return i
		}
		k++
		if k == UnitSize {
			k = 0
		}
	}
	return -1
}

// Decode returns the id carried by the unit u, if u is one.
func Decode(u []byte) (id uint32, ok bool) {
	if len(u) < UnitSize || u[0] != unitHead || u[7] != unitTail {
		return 0, false
	}
	if u[1] != ^u[4] || u[2] != ^u[5] || u[3] != ^u[6] {
		return 0, false
	}
	id = uint32(u[1])<<16 | uint32(u[2])<<8 | uint32(u[3])
	return id, id != 0
}

// Owner returns the id of the connection whose canary unit covers p[i], if
// some whole unit in p covers it.
func Owner(p []byte, i int) (id uint32, ok bool) {
	for start := i - UnitSize + 1; start <= i; start++ {
		if start < 0 || start+UnitSize > len(p) {
			continue
		}
		if id, ok := Decode(p[start : start+UnitSize]); ok {
			return id, true
		}
	}
	return 0, false
}

// Check reports nil if p holds id's canary from stream offset off, and
// otherwise an error naming the first foreign byte by its index in p, what
// was read (where), and whose canary it is when that can be told:
//
//	conn 17: Next slice byte 4093 = 0x2a (conn 3's canary); want 0xc7 (conn 17's)
func Check(p []byte, id uint32, off int64, where string) error {
	return check(p, id, off, where, 0)
}

// CheckStream is Check for a piece of a stream: it names the foreign byte
// by its stream offset rather than its index in p.
func CheckStream(p []byte, id uint32, off int64, where string) error {
	return check(p, id, off, where, off)
}

// check is Check with the foreign byte's index reported as base+i.
func check(p []byte, id uint32, off int64, where string, base int64) error {
	i := Mismatch(p, id, off)
	if i < 0 {
		return nil
	}
	want := Unit(id)[(off+int64(i))%UnitSize]
	return fmt.Errorf("conn %d: %s byte %d = %#02x (%s); want %#02x (conn %d's)",
		id, where, base+int64(i), p[i], describeOwner(p, i, id), want, id)
}

// describeOwner says whose byte p[i] seems to be.
func describeOwner(p []byte, i int, self uint32) string {
	owner, ok := Owner(p, i)
	switch {
	case !ok && p[i] == 0:
		return "zero, not a canary"
	case !ok:
		return "not a canary unit"
	case owner == self:
		return fmt.Sprintf("conn %d's own canary, out of place", self)
	default:
		return fmt.Sprintf("conn %d's canary", owner)
	}
}
