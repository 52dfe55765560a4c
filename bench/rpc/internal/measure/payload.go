package measure

import (
	"encoding/binary"
	"sync"
)

// Payload returns caller w's request payload of size bytes (at least 16): a
// pattern that differs per caller, with w in its first 8 bytes. Stamp puts
// each call's sequence number in the next 8, so a reply that carries another
// caller's or another call's bytes does not compare equal.
func Payload(w, size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(w*7 + i)
	}
	binary.LittleEndian.PutUint64(p, uint64(w))
	return p
}

// Stamp writes call seq's number into p, made by Payload.
func Stamp(p []byte, seq uint64) { binary.LittleEndian.PutUint64(p[8:], seq) }

// FirstError keeps the first error it is given, for the report line: the
// calls of a run fail alike, and one example says why. Safe for concurrent use.
type FirstError struct {
	once sync.Once
	err  error
}

// Record keeps err if it is the first non-nil one, and returns it.
func (f *FirstError) Record(err error) error {
	if err != nil {
		f.once.Do(func() { f.err = err })
	}
	return err
}

// Err returns the first error recorded, or nil.
func (f *FirstError) Err() error {
	// Read after the run: every Record happened before Run returned.
	return f.err
}
