package netpoll

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// readBookSize is how much a Reader from NewReader asks its io.Reader for at
// a time, at least.
const readBookSize = 4096

// maxEmptyReads bounds the (0, nil) results an io.Reader may return in a row
// before NewReader's Reader gives up, as bufio does.
const maxEmptyReads = 100

// errReaderEOF is what a Reader from NewReader returns once its io.Reader
// ended; it matches ErrEOF and ErrConnClosed, not io.EOF, as the
// reference's does.
var errReaderEOF = Exception(ErrEOF, "end of the underlying io.Reader")

// NewReader returns a nocopy Reader that reads from r on demand into a
// LinkBuffer of its own. Its methods block in r.Read until enough bytes
// arrived, and return an error matching ErrEOF (not io.EOF) when r ends
// first. Not safe for concurrent use.
func NewReader(r io.Reader) Reader {
	return &zcReader{r: r, buf: NewLinkBuffer()}
}

// zcReader adapts an io.Reader to Reader.
type zcReader struct {
	r   io.Reader
	buf *LinkBuffer
	err error // r's last error, reported once by the next read that needs bytes
}

// fill reads from r until n bytes are buffered.
func (z *zcReader) fill(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: %d", errLinkBufferNegative, n)
	}
	for z.buf.Len() < n {
		if err := z.readMore(n - z.buf.Len()); err != nil {
			return err
		}
	}
	return nil
}

// readMore reads at least one byte from r into the buffer, asking for want.
func (z *zcReader) readMore(want int) error {
	for range maxEmptyReads {
		if err := z.err; err != nil {
			// Reported once, as bufio does: r may have more later (a
			// bytes.Buffer written to since, a stream that resumes).
			z.err = nil
			return err
		}
		p := z.buf.book(max(want, readBookSize), max(want, readBookSize))
		n, err := z.r.Read(p)
		n = min(max(n, 0), len(p))
		if _, ackErr := z.buf.bookAck(n); ackErr != nil {
			return ackErr
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errReaderEOF
			}
			z.err = err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// Next returns the next n bytes, reading them from r as needed; see Reader.
func (z *zcReader) Next(n int) ([]byte, error) {
	if err := z.fill(n); err != nil {
		return nil, err
	}
	return z.buf.Next(n)
}

// Peek returns the next n bytes without advancing; see Reader.
func (z *zcReader) Peek(n int) ([]byte, error) {
	if err := z.fill(n); err != nil {
		return nil, err
	}
	return z.buf.Peek(n)
}

// Skip advances past the next n bytes; see Reader.
func (z *zcReader) Skip(n int) error {
	if err := z.fill(n); err != nil {
		return err
	}
	return z.buf.Skip(n)
}

// Until returns the bytes up to and including the first delim, reading
// from r until one arrives; see Reader.
func (z *zcReader) Until(delim byte) ([]byte, error) {
	scanned := 0
	for {
		if i := z.buf.indexByte(delim, scanned); i >= 0 {
			return z.buf.Next(i + 1)
		}
		scanned = z.buf.Len()
		if err := z.readMore(readBookSize); err != nil {
			return nil, err
		}
	}
}

// ReadString returns the next n bytes as a string; see Reader.
func (z *zcReader) ReadString(n int) (string, error) {
	if err := z.fill(n); err != nil {
		return "", err
	}
	return z.buf.ReadString(n)
}

// ReadBinary returns a copy of the next n bytes; see Reader.
func (z *zcReader) ReadBinary(n int) ([]byte, error) {
	if err := z.fill(n); err != nil {
		return nil, err
	}
	return z.buf.ReadBinary(n)
}

// ReadByte returns the next byte; see Reader.
func (z *zcReader) ReadByte() (byte, error) {
	if err := z.fill(1); err != nil {
		return 0, err
	}
	return z.buf.ReadByte()
}

// Slice returns the next n bytes as an independent Reader; see Reader.
func (z *zcReader) Slice(n int) (Reader, error) {
	if err := z.fill(n); err != nil {
		return nil, err
	}
	return z.buf.Slice(n)
}

// Release frees what was read; see Reader.
func (z *zcReader) Release() error {
	return z.buf.Release()
}

// Len returns the number of bytes buffered and not yet read. It does not
// read from r.
func (z *zcReader) Len() int {
	return z.buf.Len()
}

// NewWriter returns a nocopy Writer that collects writes in a LinkBuffer of
// its own and writes them to w on Flush. Not safe for concurrent use.
func NewWriter(w io.Writer) Writer {
	return &zcWriter{w: w, buf: NewLinkBuffer()}
}

// zcWriter adapts an io.Writer to Writer.
type zcWriter struct {
	w        io.Writer
	buf      *LinkBuffer
	segments [16][]byte // reused by Flush for GetBytes
}

// Malloc reserves n bytes to fill before Flush; see Writer.
func (z *zcWriter) Malloc(n int) ([]byte, error) { return z.buf.Malloc(n) }

// WriteString appends s; see Writer.
func (z *zcWriter) WriteString(s string) (int, error) { return z.buf.WriteString(s) }

// WriteBinary appends b, referencing it from BinaryInplaceThreshold bytes
// on; see Writer.
func (z *zcWriter) WriteBinary(b []byte) (int, error) { return z.buf.WriteBinary(b) }

// WriteByte appends c; see Writer.
func (z *zcWriter) WriteByte(c byte) error { return z.buf.WriteByte(c) }

// WriteDirect inserts p before the last remainCap bytes of the latest
// Malloc; see Writer.
func (z *zcWriter) WriteDirect(p []byte, remainCap int) error {
	return z.buf.WriteDirect(p, remainCap)
}

// MallocAck keeps the first n bytes written since Flush; see Writer.
func (z *zcWriter) MallocAck(n int) error { return z.buf.MallocAck(n) }

// Append moves the content of w in without copying; see Writer.
func (z *zcWriter) Append(w Writer) error { return z.buf.Append(w) }

// MallocLen returns the bytes written since the last Flush.
func (z *zcWriter) MallocLen() int { return z.buf.MallocLen() }

// Flush writes everything written so far to w, blocking in w.Write. On an
// error the bytes w did not take stay buffered for the next Flush.
func (z *zcWriter) Flush() error {
	if err := z.buf.Flush(); err != nil {
		return err
	}
	for z.buf.Len() > 0 {
		for _, p := range z.buf.GetBytes(z.segments[:]) {
			n, err := z.w.Write(p)
			if n > 0 {
				z.buf.Skip(n)
			}
			if err != nil {
				z.buf.Release()
				return err
			}
			if n < len(p) {
				z.buf.Release()
				return io.ErrShortWrite
			}
		}
	}
	clear(z.segments[:])
	return z.buf.Release()
}

// NewReadWriter returns a nocopy ReadWriter over rw, combining NewReader
// and NewWriter.
func NewReadWriter(rw io.ReadWriter) ReadWriter {
	return &zcReadWriter{
		zcReader: &zcReader{r: rw, buf: NewLinkBuffer()},
		zcWriter: &zcWriter{w: rw, buf: NewLinkBuffer()},
	}
}

// zcReadWriter adapts an io.ReadWriter to ReadWriter.
type zcReadWriter struct {
	*zcReader
	*zcWriter
}

// NewIOReader returns an io.Reader over a nocopy Reader.
//
// For a Reader that is also a net.Conn (every Connection of this library),
// it returns the connection itself, whose Read waits for input and returns a
// bare io.EOF only at the end of the stream. For any other Reader (a
// LinkBuffer, a Reader from NewReader) Read copies out only what r already
// has buffered, and returns io.EOF when that is nothing, without asking an
// underlying io.Reader for more: the reference library behaves so, and
// programs written for it (Hertz's body streams over its mock connections)
// rely on it. Read releases what it copied, so slices r handed out earlier
// become invalid.
func NewIOReader(r Reader) io.Reader {
	if conn, ok := r.(net.Conn); ok {
		return conn
	}
	return &ioReader{r: r}
}

// ioReader adapts a Reader to io.Reader.
type ioReader struct {
	r Reader
}

// Read reads up to len(p) buffered bytes; see NewIOReader.
func (r *ioReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := min(r.r.Len(), len(p))
	if n == 0 {
		return 0, io.EOF
	}
	src, err := r.r.Next(n)
	if err != nil {
		return 0, err
	}
	n = copy(p, src)
	return n, r.r.Release()
}

// NewIOWriter returns an io.Writer over a nocopy Writer: each Write copies
// p into w and flushes it, so p is not retained.
func NewIOWriter(w Writer) io.Writer {
	return &ioWriter{w: w}
}

// ioWriter adapts a Writer to io.Writer.
type ioWriter struct {
	w Writer
}

// Write copies p into the Writer and flushes it; see NewIOWriter.
func (w *ioWriter) Write(p []byte) (int, error) {
	buf, err := w.w.Malloc(len(p))
	if err != nil {
		return 0, err
	}
	copy(buf, p)
	if err := w.w.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// NewIOReadWriter returns an io.ReadWriter over a nocopy ReadWriter,
// combining NewIOReader and NewIOWriter.
func NewIOReadWriter(rw ReadWriter) io.ReadWriter {
	return &ioReadWriter{ioReader: &ioReader{r: rw}, ioWriter: &ioWriter{w: rw}}
}

// ioReadWriter adapts a ReadWriter to io.ReadWriter.
type ioReadWriter struct {
	*ioReader
	*ioWriter
}
