package netpoll

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Delimited returns a [Protocol] whose messages end with delim, such as lines
// ending in '\n'. The message excludes the delimiter (a '\r' before a '\n' is
// kept: strip it in the handler for CRLF text). A message longer than maxLine
// bytes is refused with [ErrFrameTooLarge] as soon as maxLine bytes without a
// delimiter are buffered. Replies longer than maxLine, or that contain delim,
// are refused rather than sent as broken frames.
//
// On a netpoll Reader the message aliases the input (the delimiter is found in
// place and the line taken with Next, no copy); on a netpoll Writer the reply
// is appended. Other readers are read a byte at a time, so nothing past the
// delimiter is consumed; wrap them in a bufio.Reader for speed.
//
// maxLine < 1 gives a Protocol whose methods fail, and that NewEventLoop
// refuses.
func Delimited(delim byte, maxLine int) Protocol {
	return &delimited{delim: delim, maxLine: maxLine}
}

// delimited is the Protocol of Delimited.
type delimited struct {
	delim   byte
	maxLine int
}

var (
	errBadDelimited   = errors.New("netpoll: Delimited needs maxLine > 0")
	errDelimInMessage = errors.New("netpoll: message contains the delimiter")
)

func (p *delimited) validate() error {
	if p.maxLine < 1 {
		return fmt.Errorf("%w: got %d", errBadDelimited, p.maxLine)
	}
	return nil
}

func (p *delimited) tooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes without %q, maximum %d", ErrFrameTooLarge, n, p.delim, p.maxLine)
}

// Read returns the next message without its delimiter. On a netpoll Reader it
// returns a slice of the input, valid until that Reader's Release.
func (p *delimited) Read(r io.Reader) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if nr, ok := r.(Reader); ok {
		return p.readNoCopy(nr)
	}
	return p.readCopy(r)
}

// readNoCopy takes the line with Until. On the event loop's reader Until
// fails at once when the delimiter is not in; the buffered length then says
// whether the line can still fit.
func (p *delimited) readNoCopy(r Reader) ([]byte, error) {
	line, err := r.Until(p.delim)
	if err != nil {
		if errors.Is(err, ErrIncomplete) && r.Len() > p.maxLine {
			return nil, p.tooLarge(r.Len())
		}
		return nil, err
	}
	if n := len(line) - 1; n > p.maxLine {
		return nil, p.tooLarge(n)
	}
	return line[:len(line)-1], nil
}

// readCopy reads one byte at a time, never past the delimiter.
func (p *delimited) readCopy(r io.Reader) ([]byte, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = &oneByteReader{r: r}
	}
	var line []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b == p.delim {
			if line == nil {
				line = []byte{}
			}
			return line, nil
		}
		if len(line) == p.maxLine {
			return nil, p.tooLarge(len(line) + 1)
		}
		line = append(line, b)
	}
}

// oneByteReader reads one byte per Read call from an io.Reader that has no
// ReadByte of its own.
type oneByteReader struct {
	r   io.Reader
	buf [1]byte
}

func (o *oneByteReader) ReadByte() (byte, error) {
	// Bounded as bufio is: a reader that keeps returning 0, nil is broken.
	for range 100 {
		n, err := o.r.Read(o.buf[:])
		if n == 1 {
			return o.buf[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// Write writes msg and the delimiter.
func (p *delimited) Write(w io.Writer, msg []byte) error {
	if err := p.validate(); err != nil {
		return err
	}
	if len(msg) > p.maxLine {
		return p.tooLarge(len(msg))
	}
	if bytes.IndexByte(msg, p.delim) >= 0 {
		return fmt.Errorf("%w %q", errDelimInMessage, p.delim)
	}
	if nw, ok := w.(Writer); ok {
		if _, err := nw.WriteBinary(msg); err != nil {
			return err
		}
		return nw.WriteByte(p.delim)
	}
	// One Write, so that a concurrent writer on a net.Conn cannot come
	// between the line and its delimiter.
	frame := make([]byte, len(msg)+1)
	copy(frame, msg)
	frame[len(msg)] = p.delim
	_, err := w.Write(frame)
	return err
}
