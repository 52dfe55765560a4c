package sys

import (
	"bytes"
	"testing"
)

// A completion's bytes are where Take says: at the start of its buffer on
// a classic ring; on an incremental ring after the bytes of the buffer's
// earlier completions, until one without IORING_CQE_F_BUF_MORE ends the
// buffer's turn, and the next turn starts at the start again.
func TestTakeFindsEachCompletionsBytes(t *testing.T) {
	mem := make([]byte, 4*8)
	for i := range mem {
		mem[i] = byte(i)
	}
	flags := func(bid uint16, more bool) uint32 {
		f := uint32(bid)<<UringCQEBufferShift | UringCQEFBuffer
		if more {
			f |= UringCQEFBufMore
		}
		return f
	}
	steps := []struct {
		name        string
		incremental bool
		flags       uint32
		n           int
		want        []byte
		done        bool
	}{
		{"classic", false, flags(1, false), 3, mem[8:11], true},
		{"classic again", false, flags(1, false), 2, mem[8:10], true},
		{"first piece", true, flags(2, true), 3, mem[16:19], false},
		{"second piece", true, flags(2, true), 2, mem[19:21], false},
		{"another buffer", true, flags(3, true), 1, mem[24:25], false},
		{"last piece", true, flags(2, false), 3, mem[21:24], true},
		{"next turn", true, flags(2, true), 4, mem[16:20], false},
		{"an EOF that ends the turn", true, flags(2, false), 0, nil, true},
		{"after it", true, flags(2, true), 1, mem[16:17], false},
		{"past the end", true, flags(2, false), 8, nil, true},
		{"unknown buffer", false, flags(9, false), 1, nil, true},
	}
	rings := map[bool]*BufRing{
		false: {size: 8, mask: 3, bufMem: mem},
		true:  {size: 8, mask: 3, bufMem: mem, incremental: true, filled: make([]uint32, 4)},
	}
	for _, s := range steps {
		data, bid, done := rings[s.incremental].Take(s.flags, s.n)
		if !bytes.Equal(data, s.want) || done != s.done || bid != uint16(s.flags>>UringCQEBufferShift) {
			t.Errorf("%s: Take = %v, buffer %d, done %v; want %v, buffer %d, done %v",
				s.name, data, bid, done, s.want, s.flags>>UringCQEBufferShift, s.done)
		}
	}
}
