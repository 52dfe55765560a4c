// Package bufpool keeps size-classed pools of byte slices, so that buffer
// memory is reused instead of left to the garbage collector.
//
// Classes are the powers of two from 64 B to 64 MiB. A request above the
// largest class gets a plain allocation that Put drops. The pools store a
// pointer to the first byte of each slice rather than a *[]byte: a pointer
// fits in an interface without allocating, so a Get/Put pair costs no
// allocation once the pools are warm.
//
// The pools can count the bytes they have out (Held), so tests can prove
// that every buffer came back. The count is one atomic word that every Get
// and Put on every core would write, which costs more than the pool itself
// on a busy machine, so it runs only while a caller asked for it with Track.
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
// back through Put or Forget, while trackers is above zero. Atomic; tests
// read it to prove that every buffer came back.
var held atomic.Int64

// trackers is the number of Track calls not yet ended; held is kept only
// while it is above zero. Atomic, written by Track, read by Get and Put.
var trackers atomic.Int32

// Track starts counting in Held and returns the function that stops it.
// Calls nest: counting stops when every returned function was called. Only a
// buffer taken and given back while counting is on balances, so a caller
// compares Held before and after work that it started after Track. Safe for
// concurrent use.
func Track() (stop func()) {
	trackers.Add(1)
	var once sync.Once
	return func() { once.Do(func() { trackers.Add(-1) }) }
}

// account adds delta to held while counting is on.
func account(delta int) {
	if trackers.Load() > 0 {
		held.Add(int64(delta))
	}
}

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
	account(capacity)
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
	account(-cap(b))
	pools[class].Put(&b[:1][0])
}

// Forget records that b, which came from Get, left the pool's care for good:
// it was handed to a caller who may keep it, so it must never be reused.
func Forget(b []byte) {
	if classOfCap(cap(b)) >= 0 {
		account(-cap(b))
	}
}

// Held returns the number of bytes out of the pools: handed out by Get and
// not yet returned with Put or Forget, counted only while a Track is on.
// Oversized requests are not counted.
func Held() int64 {
	return held.Load()
}
