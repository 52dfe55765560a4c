// Package bufpool keeps size-classed pools of byte slices, so that buffer
// memory is reused instead of left to the garbage collector.
//
// Classes are the powers of two from 64 B to 64 MiB. A request above the
// largest class gets a plain allocation that Put drops. The pools store a
// pointer to the first byte of each slice rather than a *[]byte: a pointer
// fits in an interface without allocating, so a Get/Put pair costs no
// allocation once the pools are warm.
package bufpool

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	minShift = 6  // the smallest class is 1<<minShift bytes
	maxShift = 26 // the largest class is 1<<maxShift bytes

	// MaxSize is the largest request served from a pool.
	MaxSize = 1 << maxShift
)

// pools[i] holds *byte pointing at the start of 1<<(i+minShift) bytes.
var pools [maxShift - minShift + 1]sync.Pool

// held counts the bytes handed out by Get from a class and not yet given
// back through Put or Forget. Atomic; tests read it to prove that every
// buffer came back.
var held atomic.Int64

// classOf returns the class index for a request of size bytes (1 ≤ size ≤ MaxSize).
func classOf(size int) int {
	if size <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(size-1)) - minShift
}

// Get returns a slice with len size and a capacity of size rounded up to its
// class. The content is not zeroed. Get(0) returns nil. Safe for concurrent use.
func Get(size int) []byte {
	if size <= 0 {
		return nil
	}
	if size > MaxSize {
		return make([]byte, size)
	}
	class := classOf(size)
	capacity := 1 << (class + minShift)
	held.Add(int64(capacity))
	if p, _ := pools[class].Get().(*byte); p != nil {
		return unsafe.Slice(p, capacity)[:size]
	}
	return make([]byte, size, capacity)
}

// classOfCap returns the class whose capacity is exactly c, or -1.
func classOfCap(c int) int {
	if c < 1<<minShift || c > MaxSize || c&(c-1) != 0 {
		return -1
	}
	return bits.TrailingZeros(uint(c)) - minShift
}

// Put gives b back to its pool. b must have come from Get, resliced at most
// in length; its capacity picks the class, and a slice whose capacity is not
// a class (a foreign or oversized one) is ignored. The caller must not use b
// afterwards. Safe for concurrent use.
func Put(b []byte) {
	class := classOfCap(cap(b))
	if class < 0 {
		return
	}
	held.Add(-int64(cap(b)))
	pools[class].Put(&b[:1][0])
}

// Forget records that b, which came from Get, left the pool's care for good:
// it was handed to a caller who may keep it, so it must never be reused.
func Forget(b []byte) {
	if classOfCap(cap(b)) >= 0 {
		held.Add(-int64(cap(b)))
	}
}

// Held returns the number of bytes currently out of the pools: handed out by
// Get and not yet returned with Put or Forget. Oversized requests are not
// counted.
func Held() int64 {
	return held.Load()
}
