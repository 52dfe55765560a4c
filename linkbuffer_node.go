package netpoll

import (
	"sync"
	"sync/atomic"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// linkBufferNode is one piece of a LinkBuffer's chain: a window onto some
// memory, with a read offset owned by the reader and a write offset owned by
// the writer.
//
// Memory is shared without copying between nodes (Slice, WriteDirect), so one
// node, the owner, counts the users of its memory: itself while it is in a
// chain, plus every node that points into it. The memory goes back to
// bufpool, and the owner's struct to nodePool, when that count reaches zero.
// A node that does not own its memory has owner set and holds one count on it.
//
// A node that reads memory it may not write (a Slice of other nodes, a
// referenced WriteBinary or WriteDirect argument) is readonly: it never
// offers room, even after MallocAck shortened it.
type linkBufferNode struct {
	// buf is the node's memory; len(buf) is unused, cap(buf) bounds writes.
	// Set by the writer before the node is published; the reader touches it
	// only for bytes below pub.
	buf []byte

	// next is set by the writer; the reader follows it only once a Flush
	// published bytes beyond this node, which orders it after the store.
	next *linkBufferNode

	// off is the next byte to read. Owned by the reader.
	off int

	// end is one past the last byte written. Owned by the writer.
	end int

	// pub is pubOpen while n is the last node that Flush published bytes
	// in (or a later one): then every published byte past the reader's
	// position lies in n, and the reader may read as many as Len says.
	// Once a Flush publishes bytes past n, it seals n by storing its end:
	// the reader may read buf[off:pub]. Only the last node is open, so a
	// Flush within one node stores nothing here. Stored by the writer (or
	// by whoever holds n exclusively, to reopen it), loaded by the reader.
	pub atomic.Int64

	// flushed is what end was at the last Flush: the bytes of n before it
	// are published. Owned by the writer.
	flushed int

	// owner is the node whose memory buf points into, or nil when this node
	// owns buf (or references caller memory nobody recycles).
	owner *linkBufferNode

	// refs counts the users of this node's memory; meaningful on an owner.
	refs atomic.Int32

	// pooled reports that buf came from bufpool and must go back there.
	pooled bool

	// readonly reports that bytes past end are not this node's to write.
	readonly bool

	// pinned reports that a caller was handed buf for keeps (the
	// AlwaysNoCopyRead feature), so it must never be reused. Set by whichever
	// reader hands it out, possibly on another buffer sharing the memory.
	pinned atomic.Bool
}

// pubOpen is the value of pub in a node that publication has not moved past.
const pubOpen = -1

// nodePool recycles node structs, open and empty; their memory is pooled
// apart in bufpool.
var nodePool = sync.Pool{New: func() any {
	n := new(linkBufferNode)
	n.pub.Store(pubOpen)
	return n
}}

// newNode returns a node with size bytes of pooled memory, or with none when
// size is 0.
func newNode(size int) *linkBufferNode {
	n := nodePool.Get().(*linkBufferNode)
	n.holdOnce()
	if size > 0 {
		n.fill(size)
	}
	return n
}

// newRefNode returns a node that reads p in place: nothing is copied and the
// memory is never recycled, since the caller owns it.
func newRefNode(p []byte) *linkBufferNode {
	n := nodePool.Get().(*linkBufferNode)
	n.holdOnce()
	n.buf = p[:len(p):len(p)]
	n.end = len(p)
	n.readonly = true
	return n
}

// newShareNode returns a node reading src.buf[from:to] and holding a count on
// its memory. Its capacity stops at to unless writable, in which case it may
// also write into the rest of src's capacity (WriteDirect hands that room on).
func newShareNode(src *linkBufferNode, from, to int, writable bool) *linkBufferNode {
	o := src.memoryOwner()
	o.refs.Add(1)
	n := nodePool.Get().(*linkBufferNode)
	n.holdOnce()
	n.owner = o
	if writable {
		n.buf = src.buf[from:]
		n.readonly = src.readonly
	} else {
		n.buf = src.buf[from:to:to]
		n.readonly = true
	}
	n.end = to - from
	return n
}

// holdOnce sets the count of a node fresh from nodePool to 1, its chain's.
// A node comes back with 1 or 0 in it; an atomic store is a fence, and
// every buffer cycle takes a node, so the common 1 is left alone.
func (n *linkBufferNode) holdOnce() {
	if n.refs.Load() != 1 {
		n.refs.Store(1)
	}
}

// fill gives an empty node size bytes of pooled memory.
func (n *linkBufferNode) fill(size int) {
	p := bufpool.Get(size)
	n.buf = p[:cap(p)]
	n.pooled = true
}

// memoryOwner returns the node that counts the users of n's memory.
func (n *linkBufferNode) memoryOwner() *linkBufferNode {
	if n.owner != nil {
		return n.owner
	}
	return n
}

// readable returns how many published bytes of n remain unread, given that
// avail published bytes remain from n's read position on. avail must have
// been loaded from the buffer's length before this call loads pub: a node
// seen open was open then too, so all of those bytes lie in it. Reader side.
func (n *linkBufferNode) readable(avail int) int {
	if p := n.pub.Load(); p != pubOpen {
		return int(p) - n.off
	}
	return avail
}

// seal records that publication moves past n, which holds end bytes.
// Writer side.
func (n *linkBufferNode) seal() {
	n.pub.Store(int64(n.end))
}

// reopen makes n open again; the caller holds n exclusively. An atomic
// store is a fence, so the common case, already open, skips it.
func (n *linkBufferNode) reopen() {
	if n.pub.Load() != pubOpen {
		n.pub.Store(pubOpen)
	}
}

// room returns how many bytes can still be written. Writer side.
func (n *linkBufferNode) room() int {
	if n.readonly {
		return 0
	}
	return cap(n.buf) - n.end
}

// soleOwner reports whether n owns its memory and nobody shares it, so the
// memory may be dropped while the struct stays in use.
func (n *linkBufferNode) soleOwner() bool {
	return n.owner == nil && n.refs.Load() == 1
}

// release drops n from whichever chain held it. The caller must hold n
// exclusively (it was unlinked, or the buffer is being torn down).
func (n *linkBufferNode) release() {
	if n.soleOwner() {
		// Nobody else can reach the memory to add a count, so skip the
		// atomic decrement: the last user of a buffer cycle's node is its
		// chain, and this runs on every cycle.
		n.putMemory()
		n.recycle()
		return
	}
	o := n.memoryOwner()
	if o != n {
		n.recycle()
	}
	if o.refs.Add(-1) == 0 {
		o.putMemory()
		o.recycle()
	}
}

// putMemory gives n's memory back to bufpool, unless a caller keeps it,
// and leaves n's fields to the caller: recycle clears them.
func (n *linkBufferNode) putMemory() {
	if n.pooled {
		if n.pinned.Load() {
			bufpool.Forget(n.buf)
		} else {
			bufpool.Put(n.buf)
		}
	}
}

// freeMemory gives n's memory back and leaves n an empty node.
func (n *linkBufferNode) freeMemory() {
	n.putMemory()
	n.buf = nil
	n.pooled = false
	if n.pinned.Load() {
		n.pinned.Store(false) // atomic stores are fences: skip the common case
	}
}

// recycle clears n and returns it to nodePool. Its count is left as it
// is, 0 or 1: holdOnce sets it when the node is taken again.
func (n *linkBufferNode) recycle() {
	n.buf = nil
	n.next = nil
	n.owner = nil
	n.off, n.end, n.flushed = 0, 0, 0
	n.reopen()
	n.pooled = false
	n.readonly = false
	if n.pinned.Load() {
		n.pinned.Store(false)
	}
	nodePool.Put(n)
}
