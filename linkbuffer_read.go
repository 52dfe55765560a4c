package netpoll

import (
	"unsafe"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// Next returns the next n bytes and advances past them. When they lie in one
// node the slice is that node's memory; otherwise they are copied into
// pooled scratch memory. Either way the slice is valid until the next
// Release and must not be modified. It returns an error, reading nothing,
// when fewer than n bytes are published. Reader side.
func (b *UnsafeLinkBuffer) Next(n int) ([]byte, error) {
	if err := b.checkRead(n); err != nil {
		return nil, err
	}
	return b.next(n), nil
}

// next consumes n published bytes (n ≤ Len) and returns them.
func (b *UnsafeLinkBuffer) next(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	l := b.Len()
	node := b.firstReadable(l)
	if node.readable(l) >= n {
		p := node.buf[node.off : node.off+n : node.off+n]
		node.off += n
		b.consume(n)
		return p
	}
	p := b.scratchCopy(n)
	b.consume(n)
	b.readInto(p)
	return p
}

// Peek returns the next n bytes without advancing, on the terms of Next.
// Reader side.
func (b *UnsafeLinkBuffer) Peek(n int) ([]byte, error) {
	if err := b.checkRead(n); err != nil {
		return nil, err
	}
	if n == 0 {
		return []byte{}, nil
	}
	l := b.Len()
	node := b.firstReadable(l)
	if node.readable(l) >= n {
		return node.buf[node.off : node.off+n : node.off+n], nil
	}
	p := b.scratchCopy(n)
	b.peekInto(p)
	return p, nil
}

// Skip advances past the next n bytes. Reader side.
func (b *UnsafeLinkBuffer) Skip(n int) error {
	if err := b.checkRead(n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	l, left := b.Len(), n
	for node := b.firstReadable(l); ; node = node.next {
		k := min(node.readable(l), left)
		node.off += k
		l -= k
		left -= k
		if left == 0 {
			b.read = node
			break
		}
	}
	b.consume(n)
	return nil
}

// Until returns the bytes up to and including the first delim and advances
// past them, on the terms of Next. Without a delim among the published
// bytes it returns an error and reads nothing. Reader side.
func (b *UnsafeLinkBuffer) Until(delim byte) ([]byte, error) {
	if b.closed {
		return nil, errLinkBufferClosed
	}
	i := b.indexByte(delim, 0)
	if i < 0 {
		return nil, errLinkBufferNoDelim
	}
	return b.next(i + 1), nil
}

// ReadBinary returns a copy of the next n bytes that the caller owns, and
// advances past them. With the AlwaysNoCopyRead feature and the bytes in one
// node, it returns the node's memory instead, which is then never reused.
// Reader side.
func (b *UnsafeLinkBuffer) ReadBinary(n int) ([]byte, error) {
	if err := b.checkRead(n); err != nil {
		return nil, err
	}
	return b.readOwned(n), nil
}

// ReadString returns the next n bytes as a string and advances past them,
// on the terms of ReadBinary. Reader side.
func (b *UnsafeLinkBuffer) ReadString(n int) (string, error) {
	if err := b.checkRead(n); err != nil {
		return "", err
	}
	p := b.readOwned(n)
	return unsafe.String(unsafe.SliceData(p), len(p)), nil
}

// readOwned consumes n published bytes into memory the caller may keep.
func (b *UnsafeLinkBuffer) readOwned(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	l := b.Len()
	node := b.firstReadable(l)
	if alwaysNoCopyRead.Load() && node.readable(l) >= n {
		node.memoryOwner().pinned.Store(true)
		p := node.buf[node.off : node.off+n : node.off+n]
		node.off += n
		b.consume(n)
		return p
	}
	p := make([]byte, n)
	b.consume(n)
	b.readInto(p)
	return p
}

// ReadByte returns the next byte and advances past it. Reader side.
func (b *UnsafeLinkBuffer) ReadByte() (byte, error) {
	if err := b.checkRead(1); err != nil {
		return 0, err
	}
	node := b.firstReadable(b.Len())
	c := node.buf[node.off]
	node.off++
	b.consume(1)
	return c, nil
}

// Slice returns the next n bytes as a new LinkBuffer, sharing the memory
// without copying, and advances past them. The slice is independent: it
// stays valid after this buffer's Release or Close, and its memory returns
// to the pool when both sides released it. Like the reference's, it then
// releases this buffer (see Release): slices that Next, Peek and Until
// returned before it become invalid. Reader side.
func (b *UnsafeLinkBuffer) Slice(n int) (Reader, error) {
	if err := b.checkRead(n); err != nil {
		return nil, err
	}
	s := sliceBuffers.Get().(*LinkBuffer)
	s.fromSlice = true
	if n == 0 {
		return s, nil // empty: no node, as a new buffer
	}
	var first, last *linkBufferNode
	l, left := b.Len(), n
	for node := b.firstReadable(l); ; node = node.next {
		if k := min(node.readable(l), left); k > 0 {
			part := newShareNode(node, node.off, node.off+k, false)
			part.flushed = k
			if first == nil {
				first = part
			} else {
				last.seal() // s is not shared yet: no reader to race
				last.next = part
			}
			last = part
			node.off += k
			l -= k
			left -= k
		}
		if left == 0 {
			b.read = node
			break
		}
	}
	b.consume(n)
	s.head, s.read = first, first
	s.tails[0] = last
	s.state.Store(int64(n) << stateLengthShift)
	// As the reference's: Slice releases what was read, so a reader that
	// only ever slices (Kitex's multiplexed server) frees its input as it
	// goes. The slice holds its own counts on the memory it shares.
	return s, b.Release()
}

// consume takes n bytes off the published count once they were read.
func (b *UnsafeLinkBuffer) consume(n int) {
	b.state.Add(-int64(n) << stateLengthShift)
	b.consumed = true
}

// scratchCopy returns n bytes of pooled memory freed at the next Release.
func (b *UnsafeLinkBuffer) scratchCopy(n int) []byte {
	p := bufpool.Get(n)
	if b.scratch == nil {
		b.scratch = scratchLists.Get().(*[][]byte)
	}
	*b.scratch = append(*b.scratch, p)
	return p
}

// readInto copies the next len(p) bytes into p and advances past them. The
// caller has already consumed them, so they count on top of Len.
func (b *UnsafeLinkBuffer) readInto(p []byte) {
	if len(p) == 0 {
		return // an empty buffer has no node to start from
	}
	l := b.Len() + len(p)
	for node := b.firstReadable(l); ; node = node.next {
		k := copy(p, node.buf[node.off:node.off+node.readable(l)])
		node.off += k
		l -= k
		p = p[k:]
		if len(p) == 0 {
			b.read = node
			return
		}
	}
}

// peekInto copies the next len(p) bytes into p (len(p) ≤ Len) without
// advancing.
func (b *UnsafeLinkBuffer) peekInto(p []byte) {
	if len(p) == 0 {
		return // an empty buffer has no node to start from
	}
	l := b.Len()
	for node := b.firstReadable(l); ; node = node.next {
		k := copy(p, node.buf[node.off:node.off+node.readable(l)])
		l -= k
		p = p[k:]
		if len(p) == 0 {
			return
		}
	}
}
