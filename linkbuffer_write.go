package netpoll

import (
	"fmt"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// Malloc reserves n writable bytes at the end of the buffer and returns
// them. They become readable at the next Flush, so they must be filled
// before it; MallocAck can give back what was not used. Writer side.
func (b *UnsafeLinkBuffer) Malloc(n int) ([]byte, error) {
	if err := b.checkWrite(n); err != nil {
		return nil, err
	}
	return b.malloc(n), nil
}

// malloc reserves n bytes in the tail, growing the chain if needed.
func (b *UnsafeLinkBuffer) malloc(n int) []byte {
	b.beginWrite()
	t := b.grow(n)
	p := t.buf[t.end : t.end+n : t.end+n]
	t.end += n
	b.unflushed += n
	return p
}

// WriteString appends a copy of s. Writer side.
func (b *UnsafeLinkBuffer) WriteString(s string) (int, error) {
	if err := b.checkWrite(0); err != nil {
		return 0, err
	}
	return copy(b.malloc(len(s)), s), nil
}

// WriteBinary appends p. Below BinaryInplaceThreshold bytes p is copied;
// from it on, p is referenced without copying, so it must not change until
// the bytes were read and released. Writer side.
func (b *UnsafeLinkBuffer) WriteBinary(p []byte) (int, error) {
	if err := b.checkWrite(0); err != nil {
		return 0, err
	}
	if len(p) < BinaryInplaceThreshold {
		return copy(b.malloc(len(p)), p), nil
	}
	b.beginWrite()
	b.link(newRefNode(p))
	b.unflushed += len(p)
	return len(p), nil
}

// WriteByte appends c. Writer side.
func (b *UnsafeLinkBuffer) WriteByte(c byte) error {
	if err := b.checkWrite(0); err != nil {
		return err
	}
	b.malloc(1)[0] = c
	return nil
}

// WriteDirect inserts p, without copying it, in front of the last remainCap
// bytes of the latest Malloc: a caller can Malloc a frame, fill its head,
// splice a large payload into the middle, and fill its tail. p must not
// change until the bytes were read and released. remainCap must not exceed
// what was written to the tail node since the last Flush. Writer side.
func (b *UnsafeLinkBuffer) WriteDirect(p []byte, remainCap int) error {
	if err := b.checkWrite(remainCap); err != nil {
		return err
	}
	b.beginWrite()
	t := b.tail()
	written := 0 // an empty buffer has no tail, and nothing was written
	if t != nil {
		written = t.end - t.flushed
	}
	if remainCap > written {
		return fmt.Errorf("%w: WriteDirect remainCap %d beyond the last Malloc", errLinkBufferMisuse, remainCap)
	}
	if len(p) == 0 {
		return nil
	}
	var rest *linkBufferNode
	if t != nil {
		cut := t.end - remainCap
		if remainCap > 0 || t.room() > 0 {
			rest = newShareNode(t, cut, t.end, true)
		}
		t.end = cut
	}
	b.link(newRefNode(p))
	if rest != nil {
		b.link(rest)
	}
	b.unflushed += len(p)
	return nil
}

// MallocAck keeps the first n bytes written since the last Flush and
// discards the rest. Writer side.
func (b *UnsafeLinkBuffer) MallocAck(n int) error {
	if err := b.checkWrite(n); err != nil {
		return err
	}
	if n > b.unflushed {
		return fmt.Errorf("%w: MallocAck(%d) with %d bytes written", errLinkBufferMisuse, n, b.unflushed)
	}
	if n == b.unflushed {
		return nil
	}
	keep := n
	node := b.flush
	for {
		if keep <= node.end-node.flushed {
			node.end = node.flushed + keep
			break
		}
		keep -= node.end - node.flushed
		node = node.next
	}
	// Nothing past node was published, so the reader never reaches it.
	for d := node.next; d != nil; {
		next := d.next
		d.release()
		d = next
	}
	node.next = nil
	b.setTail(node)
	b.unflushed = n
	return nil
}

// Append moves the content of w, written and not yet flushed alike, to the
// end of this buffer without copying, as unflushed bytes. w must be a
// *LinkBuffer (or a Writer from NewWriter) and must not be used afterwards.
// Writer side.
func (b *UnsafeLinkBuffer) Append(w Writer) error {
	switch w := w.(type) {
	case *UnsafeLinkBuffer:
		return b.WriteBuffer(w)
	case *zcWriter:
		return b.WriteBuffer(w.buf)
	}
	return errLinkBufferAppend
}

// WriteBuffer moves the unread content of buf, written and not yet flushed
// alike, to the end of this buffer without copying, as unflushed bytes: a
// Flush makes them readable. buf must not be used afterwards, except for
// Close, which does nothing. Writer side.
func (b *UnsafeLinkBuffer) WriteBuffer(buf *LinkBuffer) error {
	if err := b.checkWrite(0); err != nil {
		return err
	}
	if buf == nil {
		return nil
	}
	if buf == b || buf.closed {
		return fmt.Errorf("%w: WriteBuffer of itself or of a closed buffer", errLinkBufferMisuse)
	}
	buf.Flush()
	buf.releaseScratch()
	total := buf.Len()
	if total > 0 {
		b.beginWrite()
	}
	for n := buf.head; n != nil; {
		next := n.next
		n.next = nil
		if n.end > n.off {
			// Unpublished in this buffer, so open, and its bytes start at off.
			n.reopen()
			n.flushed = n.off
			b.link(n)
		} else {
			n.release()
		}
		n = next
	}
	b.unflushed += total
	buf.reset()
	buf.closed = true
	if buf.fromSlice {
		buf.recycle()
	}
	return nil
}

// recycle returns a buffer made by Slice, consumed by WriteBuffer, to the pool.
func (b *UnsafeLinkBuffer) recycle() {
	b.scratch = nil // WriteBuffer released it
	b.consumed, b.closed, b.fromSlice = false, false, false
	sliceBuffers.Put(b)
}

// Flush makes everything written since the last Flush readable. Writer side.
func (b *UnsafeLinkBuffer) Flush() error {
	if b.closed {
		return errLinkBufferClosed
	}
	if !b.writing {
		return nil
	}
	if t := b.tail(); t != nil {
		for n := b.flush; n != t; n = n.next {
			n.seal()
		}
		t.flushed = t.end
	}
	b.flush = nil // an idle writer keeps no pointer but its tail slot
	total := b.unflushed
	b.unflushed, b.booked = 0, 0
	b.endWrite(total)
	return nil
}

// MallocLen returns the number of bytes written since the last Flush.
// Writer side.
func (b *UnsafeLinkBuffer) MallocLen() int {
	return b.unflushed
}

// book returns writable space at the tail for a read system call: at least
// min(bookSize, maxSize) bytes and at most maxSize. When the tail has less
// room, a node of bookSize bytes (at most maxSize) is linked. The space is
// not readable until bookAck. Writer side.
func (b *UnsafeLinkBuffer) book(bookSize, maxSize int) []byte {
	want := max(min(bookSize, maxSize), 1)
	return b.bookSized(want, want, maxSize)
}

// bookSized is book with the two sizes apart: the tail is used if it has
// room for need bytes, else a node of size bytes is linked. A copy into the
// buffer (the io_uring engine's input) books with need 1, so it fills the
// tail's room before it takes a new node. Writer side.
func (b *UnsafeLinkBuffer) bookSized(need, size, maxSize int) []byte {
	if b.closed || maxSize <= 0 {
		return nil
	}
	b.beginWrite()
	t := b.growSized(need, size)
	p := t.buf[t.end : t.end+min(t.room(), maxSize)]
	b.booked = len(p)
	return p
}

// bookAck publishes the first n bytes of the space the last book returned,
// along with anything else written, and returns the new readable length.
// Writer side.
func (b *UnsafeLinkBuffer) bookAck(n int) (int, error) {
	if b.closed {
		return 0, errLinkBufferClosed
	}
	if n < 0 || n > b.booked {
		return b.Len(), fmt.Errorf("%w: bookAck(%d) after booking %d bytes", errLinkBufferMisuse, n, b.booked)
	}
	if n > 0 { // only after a book, so the writer is busy and has a tail
		b.tail().end += n
		b.unflushed += n
	}
	if err := b.Flush(); err != nil {
		return 0, err
	}
	return b.Len(), nil
}

// checkWrite validates a write of n bytes.
func (b *UnsafeLinkBuffer) checkWrite(n int) error {
	if b.closed {
		return errLinkBufferClosed
	}
	if n < 0 {
		return fmt.Errorf("%w: %d", errLinkBufferNegative, n)
	}
	return nil
}

// beginWrite marks the writer busy from its first write until Flush, so the
// reader does not free the tail meanwhile. The same add tells it which tail
// slot to use: if the reader freed the chain since the last Flush, the slot
// it moves to is empty, and the write starts a new chain.
func (b *UnsafeLinkBuffer) beginWrite() {
	if b.writing {
		return
	}
	b.writing = true
	s := b.state.Add(stateBusy)
	b.wslot = uint8(s>>1) & 1
	b.flush = b.tail()
}

// endWrite publishes total more bytes and marks the writer idle, in one
// atomic step that also orders the seals and links before it. A chain that
// this writer started and never published in goes away first, and a tail
// that never received a byte gives its memory back, so an idle buffer holds
// neither.
func (b *UnsafeLinkBuffer) endWrite(total int) {
	if b.fresh {
		if total > 0 {
			b.fresh = false
		} else {
			b.dropFresh()
		}
	}
	if t := b.tail(); t != nil && t.end == 0 && t.pooled && t.soleOwner() {
		// Nothing was published in it, so the reader never reads its memory.
		t.freeMemory()
	}
	b.writing = false
	b.state.Add(int64(total)<<stateLengthShift - stateBusy)
}

// dropFresh frees a chain that the writer started and published nothing
// in. Writer side: the reader has not taken it over, so it does not look
// at head, and the writer may empty it.
func (b *UnsafeLinkBuffer) dropFresh() {
	for n := b.head; n != nil; {
		next := n.next
		n.release()
		n = next
	}
	b.head, b.flush = nil, nil
	b.setTail(nil)
	b.fresh = false
}

// grow returns the tail with at least n bytes of room, linking a new node
// of max(n, LinkBufferCap) bytes when it has less.
func (b *UnsafeLinkBuffer) grow(n int) *linkBufferNode {
	return b.growSized(n, max(n, LinkBufferCap))
}

// growSized returns the tail with at least n bytes of room, linking a new
// node of size bytes (size ≥ n) when it has less.
func (b *UnsafeLinkBuffer) growSized(n, size int) *linkBufferNode {
	t := b.tail()
	if t == nil {
		t = newNode(size)
		b.start(t)
		return t
	}
	if t.room() >= n {
		return t
	}
	if cap(t.buf) == 0 && t.end == 0 && !t.readonly && t.soleOwner() {
		// An empty node nothing was ever published in: the reader only
		// loads its pub, so it can take memory in place.
		t.fill(size)
		return t
	}
	nn := newNode(size)
	b.link(nn)
	return nn
}

// link appends n, holding no published bytes, after the tail, or starts
// the chain with it.
func (b *UnsafeLinkBuffer) link(n *linkBufferNode) {
	t := b.tail()
	if t == nil {
		b.start(n)
		return
	}
	t.next = n
	b.setTail(n)
}

// bookExact returns n writable bytes at the end of b, for a writer that
// fills a known amount (the plaintext of one TLS record, never longer than
// its payload): the tail's room when it has n bytes, else a new node of at
// least LinkBufferCap. A whole record then lies in one slice, and Flush can
// encrypt it back as one record without gathering pieces. bookAck
// publishes what was written. It returns nil once b is closed.
func (b *UnsafeLinkBuffer) bookExact(n int) []byte {
	if b.closed {
		return nil
	}
	b.beginWrite()
	tail := b.grow(n)
	b.booked = n
	return tail.buf[tail.end : tail.end+n : tail.end+n]
}

// ownReferences copies into pooled memory of b's own every unread byte
// that b only references in its caller's memory (WriteBinary of
// BinaryInplaceThreshold or more, WriteDirect). A connection calls it after
// a send failed with output left: the caller was told its memory is free
// after Flush returns, and may release or reuse it before the rest is sent.
// Bytes shared with other buffers (Append, Slice) hold counts and stay
// shared. The caller holds both sides: every byte is published and no
// write is in progress.
func (b *UnsafeLinkBuffer) ownReferences() {
	if b.closed || b.unflushed > 0 {
		return
	}
	for n := b.head; n != nil; n = n.next {
		if n.owner != nil || n.pooled || n.end == n.off {
			continue
		}
		size := n.end - n.off
		p := bufpool.Get(size)
		copy(p[:size], n.buf[n.off:n.end])
		n.buf = p[:cap(p)]
		n.pooled = true
		n.readonly = true // the rest of p is not ours to offer as room
		n.flushed = max(n.flushed-n.off, 0)
		if n.pub.Load() != pubOpen {
			n.pub.Store(int64(size))
		}
		n.off, n.end = 0, size
	}
}
