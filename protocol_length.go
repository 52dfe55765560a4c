package netpoll

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// LengthPrefixed returns a [Protocol] whose messages are preceded by their
// length as an unsigned integer of size bytes (1, 2 or 4) in order. A frame
// that announces more than maxFrame bytes is refused with [ErrFrameTooLarge]
// as soon as its prefix is in, so a peer cannot make the reader wait for, or
// allocate, the size it claims. maxFrame is capped at what size bytes can
// express; keep it under the EventLoop's input limit ([WithMaxInputBuffer]),
// or a frame between the two can never be read.
//
// On a netpoll Reader the message aliases the input (Peek and Next, no copy);
// on a netpoll Writer the reply is appended after a header reserved with
// Malloc. Other readers and writers are served by copying.
//
// Invalid arguments (size not 1, 2 or 4, a nil order, maxFrame < 1) give a
// Protocol whose methods fail, and that NewEventLoop refuses.
func LengthPrefixed(size int, order binary.ByteOrder, maxFrame int) Protocol {
	p := &lengthPrefixed{size: size, order: order, maxFrame: maxFrame}
	if size == 1 || size == 2 || size == 4 {
		p.maxFrame = min(maxFrame, 1<<(8*size)-1)
	}
	return p
}

// lengthPrefixed is the Protocol of LengthPrefixed.
type lengthPrefixed struct {
	size     int
	order    binary.ByteOrder
	maxFrame int
}

var errBadLengthPrefix = errors.New("netpoll: LengthPrefixed needs size 1, 2 or 4, a byte order and maxFrame > 0")

func (p *lengthPrefixed) validate() error {
	if (p.size != 1 && p.size != 2 && p.size != 4) || p.order == nil || p.maxFrame < 1 {
		return fmt.Errorf("%w: got size %d, order %v, maxFrame %d", errBadLengthPrefix, p.size, p.order, p.maxFrame)
	}
	return nil
}

// length decodes the prefix in hdr, which holds p.size bytes.
func (p *lengthPrefixed) length(hdr []byte) int {
	switch p.size {
	case 1:
		return int(hdr[0])
	case 2:
		return int(p.order.Uint16(hdr))
	default:
		return int(p.order.Uint32(hdr))
	}
}

// putLength encodes n into hdr, which holds p.size bytes.
func (p *lengthPrefixed) putLength(hdr []byte, n int) {
	switch p.size {
	case 1:
		hdr[0] = byte(n)
	case 2:
		p.order.PutUint16(hdr, uint16(n))
	default:
		p.order.PutUint32(hdr, uint32(n))
	}
}

// tooLarge is the error for a frame of n bytes.
func (p *lengthPrefixed) tooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes, maximum %d", ErrFrameTooLarge, n, p.maxFrame)
}

// Read returns the next message. On a netpoll Reader it returns a slice of
// the input, valid until that Reader's Release.
func (p *lengthPrefixed) Read(r io.Reader) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if nr, ok := r.(Reader); ok {
		return p.readNoCopy(nr)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:p.size]); err != nil {
		return nil, err
	}
	n := p.length(hdr[:p.size])
	if n > p.maxFrame {
		return nil, p.tooLarge(n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return msg, nil
}

// readNoCopy reads the prefix with Peek, so nothing is consumed until the
// whole frame is buffered, then takes prefix and body with one Next.
func (p *lengthPrefixed) readNoCopy(r Reader) ([]byte, error) {
	hdr, err := r.Peek(p.size)
	if err != nil {
		return nil, err
	}
	n := p.length(hdr)
	if n > p.maxFrame {
		return nil, p.tooLarge(n)
	}
	frame, err := r.Next(p.size + n)
	if err != nil {
		return nil, err
	}
	return frame[p.size:], nil
}

// Write writes the prefix and msg. On a netpoll Writer msg of
// BinaryInplaceThreshold bytes or more is referenced until the Flush.
func (p *lengthPrefixed) Write(w io.Writer, msg []byte) error {
	if err := p.validate(); err != nil {
		return err
	}
	if len(msg) > p.maxFrame {
		return p.tooLarge(len(msg))
	}
	if nw, ok := w.(Writer); ok {
		hdr, err := nw.Malloc(p.size)
		if err != nil {
			return err
		}
		p.putLength(hdr, len(msg))
		_, err = nw.WriteBinary(msg)
		return err
	}
	// One Write, so that a concurrent writer on a net.Conn cannot come
	// between the prefix and the body.
	frame := make([]byte, p.size+len(msg))
	p.putLength(frame, len(msg))
	copy(frame[p.size:], msg)
	_, err := w.Write(frame)
	return err
}
