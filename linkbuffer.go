package netpoll

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// LinkBufferCap is the smallest node a LinkBuffer allocates, in bytes; a
// larger write gets a node of its own size. Set it before creating buffers:
// changing it while buffers are in use races with them.
var LinkBufferCap = 4096

// BinaryInplaceThreshold is the size from which [LinkBuffer.WriteBinary]
// references its argument instead of copying it: below it a copy is cheaper
// than a node of its own.
const BinaryInplaceThreshold = 4096

// alwaysNoCopyRead makes ReadBinary and ReadString hand out buffer memory
// instead of a copy when the bytes lie in one node; that memory then never
// returns to the pool. Set by Configure from Config.Feature.AlwaysNoCopyRead.
var alwaysNoCopyRead atomic.Bool

// LinkBuffer is the zero-copy buffer of the library; see [UnsafeLinkBuffer].
type LinkBuffer = UnsafeLinkBuffer

// The errors of a LinkBuffer that is not a connection. They are wrapped with
// the sizes involved, so compare them with errors.Is.
var (
	errLinkBufferShort    = errors.New("netpoll: link buffer holds fewer bytes than requested")
	errLinkBufferNegative = errors.New("netpoll: negative length passed to link buffer")
	errLinkBufferNoDelim  = errors.New("netpoll: delimiter not found in link buffer")
	errLinkBufferMisuse   = errors.New("netpoll: link buffer call out of order")
	errLinkBufferClosed   = Exception(ErrConnClosed, "link buffer closed")
	errLinkBufferAppend   = Exception(ErrUnsupported, "append of a Writer that is not a *LinkBuffer")
)

// UnsafeLinkBuffer.state packs the published length with the flags that
// let the reader free the whole chain once everything was read, though its
// last node is the one the writer appends to. One atomic word, so that
// Flush publishes bytes and ends a write in one step, the reader takes the
// chain back with one compare-and-swap, and the writer learns of that in
// the add that marks it busy: freeing the chain costs the write-read-
// release cycle one atomic operation, and nobody waits.
//
//	bit 0      stateBusy: the writer wrote since its last Flush.
//	           Set by the writer's first write, cleared by Flush.
//	bit 1      stateEpoch: which of the two tail slots the writer uses.
//	           Flipped by the reader when it frees the chain, only while
//	           nothing is left to read and the writer is idle.
//	bits 2–63  the published length: bytes flushed and not yet read.
//
// The writer does not wait for the reclaim, so the reader cannot clear the
// writer's tail after its claim without racing the writer's next write,
// and a stale tail would keep a node alive in an idle buffer. It clears
// the slot the writer leaves instead. The writer comes back to a slot only
// after the next reclaim, which orders the clear before it; and the next
// reclaim needs bytes published, so the writer saw the flip before it.
const (
	stateBusy int64 = 1 << iota
	stateEpoch

	stateLengthShift = iota
)

// UnsafeLinkBuffer is a byte queue kept as a chain of nodes of pooled
// memory: the writer appends at the tail and publishes with Flush, the
// reader takes bytes from the head and frees them with Release. Reads hand
// out node memory without copying whenever the bytes lie in one node.
//
// One goroutine may read (Next, Peek, Skip, Until, Read*, Slice, Release,
// Bytes, GetBytes) while another writes (Malloc, Write*, MallocAck, Append,
// WriteBuffer, Flush); neither side is safe for concurrent use by itself.
// Len and IsEmpty are safe for concurrent use. Close must not run at the
// same time as any other method.
//
// Memory: node memory comes from a pool and goes back when its last user
// releases it. A buffer whose input was all read and released, while its
// writer is between Flushes, holds neither memory nor nodes: only its
// 80-byte struct.
type UnsafeLinkBuffer struct {
	// state holds the published length, the writer's busy flag and the
	// reclaim epoch; see stateBusy. Atomic; Flush adds to the length and reads take from
	// it, which orders every node and byte the writer published before the
	// reader touches them.
	state atomic.Int64

	// An empty buffer holds no node: head, read, flush and the tails are
	// nil, since an idle connection owns two buffers and a node struct
	// costs more than the buffer itself. The writer starts a chain with
	// start, which stores head for the reader to find; the reader takes
	// head over as its own once Len shows bytes, which orders the writer's
	// store before it. While read is nil the reader does not touch head;
	// the reader's reclaim clears head before its claim, when the writer
	// still appends to that chain and so leaves head alone.

	// Owned by the reader while read is set; stored by the writer before.
	head    *linkBufferNode // first node not yet freed; nodes before read are all read
	read    *linkBufferNode // node holding the next byte to read; nil before the first
	scratch *[][]byte       // copies for reads spanning nodes, freed at Release; nil when none

	// Owned by the writer, but for the slot the reader clears; see state.
	flush     *linkBufferNode    // first node that may hold unpublished bytes; nil while idle
	tails     [2]*linkBufferNode // tails[wslot] is the last node, where writes go
	unflushed int                // bytes written since the last Flush
	booked    int                // bytes handed out by the last book

	consumed  bool  // reader: bytes were read since the last reclaim
	writing   bool  // writer: stateBusy is set on our account
	fresh     bool  // writer: it started the chain and published nothing in it yet
	closed    bool  // set by Close
	fromSlice bool  // made by Slice: Append may recycle the struct
	wslot     uint8 // writer: the tail slot in use, stateEpoch as of beginWrite
}

// NewLinkBuffer returns an empty LinkBuffer. The optional size is a capacity
// hint: the first node gets at least that much memory. Without it the buffer
// holds no memory, and no node, until the first write.
func NewLinkBuffer(size ...int) *LinkBuffer {
	b := new(LinkBuffer)
	if len(size) > 0 && size[0] > 0 {
		// The reader takes the node over at once: no writer runs yet.
		n := newNode(max(size[0], LinkBufferCap))
		b.head, b.read, b.tails[0] = n, n, n
	}
	return b
}

// tail returns the last node, or nil. Writer side.
func (b *UnsafeLinkBuffer) tail() *linkBufferNode {
	return b.tails[b.wslot&1]
}

// setTail makes n the last node. Writer side.
func (b *UnsafeLinkBuffer) setTail(n *linkBufferNode) {
	b.tails[b.wslot&1] = n
}

// reset forgets every node, for a caller that holds b exclusively and
// freed them.
func (b *UnsafeLinkBuffer) reset() {
	b.head, b.read, b.flush = nil, nil, nil
	b.tails = [2]*linkBufferNode{}
	b.wslot = 0
	b.state.Store(0)
	b.unflushed, b.booked = 0, 0
	b.writing, b.fresh = false, false
}

// start makes n the only node of an empty chain. Writer side: the reader
// does not look at head until a Flush publishes bytes in n.
func (b *UnsafeLinkBuffer) start(n *linkBufferNode) {
	b.head, b.flush = n, n
	b.setTail(n)
	b.fresh = true
}

// sliceBuffers recycles the buffers made by Slice once Append consumed them.
var sliceBuffers = sync.Pool{New: func() any { return new(LinkBuffer) }}

// Len returns the number of bytes published by Flush and not yet read.
// Safe for concurrent use.
func (b *UnsafeLinkBuffer) Len() int {
	return int(b.state.Load() >> stateLengthShift)
}

// IsEmpty reports whether Len is 0. Safe for concurrent use.
func (b *UnsafeLinkBuffer) IsEmpty() bool {
	return b.state.Load()>>stateLengthShift == 0
}

// Close frees every node, read or not, and every slice the buffer handed out
// becomes invalid (a Slice taken from it lives on). Later calls return an
// error matching ErrConnClosed; Close itself may be called again. Close must
// not run at the same time as any other method.
func (b *UnsafeLinkBuffer) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.releaseScratch()
	for n := b.head; n != nil; {
		next := n.next
		n.release()
		n = next
	}
	b.reset()
	return nil
}

// abandon is Close for a buffer whose memory a caller may still hold: a
// slice from Next, Peek or Until not yet released, or a Malloc not yet
// flushed, when the connection closes under it. Nothing goes back to the
// pools, so nothing can be handed to another connection while the caller
// still reads or writes it; the garbage collector takes the memory once the
// last slice is gone. The same rules as Close apply.
func (b *UnsafeLinkBuffer) abandon() {
	if b.closed {
		return
	}
	for n := b.head; n != nil; n = n.next {
		n.memoryOwner().pinned.Store(true)
	}
	if l := b.scratch; l != nil {
		for i, p := range *l {
			bufpool.Forget(p)
			(*l)[i] = nil
		}
		*l = (*l)[:0]
		b.scratch = nil
	}
	_ = b.Close()
}

// Release frees the memory of everything read so far: whole nodes read to
// the end, and the copies made for reads that spanned nodes. Slices that
// Next, Peek and Until returned before it become invalid; a Slice does not.
// When everything published was read and the writer is between Flushes, the
// last node goes too, so the buffer holds no memory. Reader side.
func (b *UnsafeLinkBuffer) Release() error {
	if b.closed {
		return errLinkBufferClosed
	}
	if b.scratch != nil {
		b.releaseScratch()
	}
	if l := b.Len(); l > 0 {
		b.firstReadable(l)
	}
	if b.read == nil {
		return nil // nothing to read since the last reclaim: head is the writer's
	}
	for b.head != b.read {
		n := b.head
		b.head = n.next
		n.release()
	}
	if b.consumed {
		b.reclaim()
	}
	return nil
}

// scratchLists recycles the lists of scratch copies, so that a buffer
// holds one only between a spanning read and the next Release.
var scratchLists = sync.Pool{New: func() any { return new([][]byte) }}

// releaseScratch returns the copies made by reads that spanned nodes.
func (b *UnsafeLinkBuffer) releaseScratch() {
	l := b.scratch
	if l == nil {
		return
	}
	for i, p := range *l {
		bufpool.Put(p)
		(*l)[i] = nil
	}
	*l = (*l)[:0]
	b.scratch = nil
	scratchLists.Put(l)
}

// reclaim frees the whole chain, tail included, once every published byte
// was read, if the writer is idle; the writer's next write starts a new one.
// Reader side.
func (b *UnsafeLinkBuffer) reclaim() {
	s := b.state.Load()
	if s&^stateEpoch != 0 {
		return // bytes left to read, or the writer is writing: next time
	}
	// Clear head before the claim: the writer still appends to this chain
	// until it sees the claim, so it does not store head, and once it did
	// see it, it may.
	h := b.head
	b.head = nil
	if !b.state.CompareAndSwap(s, s^stateEpoch) {
		b.head = h
		return // the writer began a write since the load: next time
	}
	// The writer is idle and, once it sees the flip, moves to its other
	// tail slot without following this one: every node is ours.
	b.tails[s>>1&1] = nil
	b.read = nil
	b.consumed = false
	for n := h; n != nil; {
		next := n.next
		n.release()
		n = next
	}
}

// Bytes returns every readable byte without consuming it. When they lie in
// one node the slice aliases the buffer until the next Release and must not
// be modified; otherwise it is a fresh copy. Reader side.
func (b *UnsafeLinkBuffer) Bytes() []byte {
	if b.closed {
		return nil
	}
	l := b.Len()
	if l == 0 {
		return []byte{}
	}
	n := b.firstReadable(l)
	if n.readable(l) >= l {
		return n.buf[n.off : n.off+l : n.off+l]
	}
	p := make([]byte, l)
	b.peekInto(p)
	return p
}

// GetBytes fills p with slices of the readable bytes, in order, without
// consuming them, and returns the filled part of p; with an empty p it
// returns slices of all of them. The slices alias the buffer until the next
// Release and must not be modified. Reader side.
func (b *UnsafeLinkBuffer) GetBytes(p [][]byte) [][]byte {
	if b.closed {
		return p[:0]
	}
	all := len(p) == 0
	left := b.Len()
	if left == 0 {
		return p[:0]
	}
	i := 0
	for n := b.firstReadable(left); all || i < len(p); n = n.next {
		k := min(n.readable(left), left)
		if k > 0 {
			s := n.buf[n.off : n.off+k : n.off+k]
			if all {
				p = append(p, s)
			} else {
				p[i] = s
			}
			i++
			left -= k
		}
		if left == 0 {
			break // do not touch next: nothing is published past here
		}
	}
	return p[:i]
}

// indexByte returns the offset from the read position of the first c in the
// readable bytes at or after offset skip, or -1. It does not allocate; the
// connection uses it to wait for a delimiter. Reader side.
func (b *UnsafeLinkBuffer) indexByte(c byte, skip int) int {
	if b.closed || skip < 0 {
		return -1
	}
	left := b.Len()
	if skip >= left {
		return -1
	}
	base := 0 // offset of n's first readable byte
	for n := b.firstReadable(left); ; n = n.next {
		k := min(n.readable(left), left)
		if skip < base+k {
			from := max(skip-base, 0)
			if i := bytes.IndexByte(n.buf[n.off+from:n.off+k], c); i >= 0 {
				return base + from + i
			}
		}
		base += k
		left -= k
		if left == 0 {
			return -1
		}
	}
}

// firstReadable returns the first node with unread published bytes, moving
// the read cursor onto it, given l = Len > 0 loaded by the caller. Bytes are
// published past any exhausted node, so its next is set. The first read of
// a chain takes it over from the writer, whose Flush published head.
func (b *UnsafeLinkBuffer) firstReadable(l int) *linkBufferNode {
	if b.read == nil {
		b.read = b.head
	}
	for b.read.readable(l) == 0 {
		b.read = b.read.next
	}
	return b.read
}

// checkRead validates a read of n bytes: the buffer is open, n is not
// negative and n bytes are published.
func (b *UnsafeLinkBuffer) checkRead(n int) error {
	if b.closed {
		return errLinkBufferClosed
	}
	if n < 0 {
		return fmt.Errorf("%w: %d", errLinkBufferNegative, n)
	}
	if l := b.Len(); n > l {
		return fmt.Errorf("%w: want %d, have %d", errLinkBufferShort, n, l)
	}
	return nil
}
