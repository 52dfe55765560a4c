package netpoll

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// TLS records on the wire (RFC 8446 §5.1, RFC 5246 §6.2.1): a five-byte
// header (content type, legacy version, payload length big-endian in bytes
// 3 and 4), then the payload. The transport below hands crypto/tls whole
// records only, so tls.Conn never waits inside a record.
const (
	recordHeaderLen = 5
	// maxRecordPayload is the longest payload crypto/tls accepts (TLS 1.2:
	// 2^14 + 2048). A header announcing more is handed over at once, so that
	// crypto/tls rejects it rather than we wait for up to 64 KiB.
	maxRecordPayload = 1<<14 + 2048
	// maxPlaintext is the most plaintext one record carries (RFC 8446 §5.1).
	maxPlaintext = 1 << 14
)

// errWouldBlock is what the transport returns, after the handshake, when
// raw input holds no complete record. It is a net.Error whose Temporary
// reports true: crypto/tls then returns it from Read without making it
// sticky (conn.go, readRecordOrCCS), and the next Read resumes at the same
// record boundary. It is never seen outside this file and pull.
var errWouldBlock net.Error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "netpoll: tls: no complete record buffered" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// tlsTransport is the net.Conn that crypto/tls reads and writes: Read takes
// bytes from the connection's socket input (inBuf), one record at a time,
// and Write writes to the socket directly (writeAll, blocking while it is
// full, within the write deadline and timeout).
//
// During the handshake Read blocks, on the handshake goroutine, until the
// record's bytes arrive (crypto/tls runs a handshake as one blocking call
// and cannot be suspended half way). After it, Read never blocks: with no
// complete record it returns errWouldBlock.
type tlsTransport struct {
	raw *connection

	// nonBlocking is set once the handshake succeeded; written by the
	// handshake goroutine, read by the readers.
	nonBlocking atomic.Bool

	// Owned by the goroutine inside tls.Conn's read side (its input lock).
	recordLeft int // bytes of the current record not yet handed over
	want       int // raw input length that would let Read make progress
}

// Read hands crypto/tls the next bytes of the current record, at most up to
// its end, so tls.Conn never buffers past a record boundary. It runs on the
// handshake goroutine, or under the connection's read side (refill): the
// handshake is over before refill reads.
func (a *tlsTransport) Read(p []byte) (int, error) {
	raw := a.raw
	in := &raw.inBuf
	if len(p) == 0 {
		return 0, nil
	}
	if a.recordLeft == 0 {
		if err := a.startRecord(); err != nil {
			return 0, err
		}
	}
	avail := in.Len()
	if avail == 0 {
		// Only the blocking mode gets here: a non-blocking record is whole.
		if err := raw.waitInput(1, nil, nil); err != nil {
			return 0, transportReadError(raw, err)
		}
		avail = in.Len()
	}
	n := min(len(p), a.recordLeft, avail)
	in.consume(n)
	in.readInto(p[:n])
	a.recordLeft -= n
	err := in.Release()
	raw.resumeInputIfDrained()
	return n, err
}

// startRecord reads the next record header and sets recordLeft. Blocking,
// it waits for the header; non-blocking, it starts a record only when the
// whole record is buffered, and otherwise records in want what it needs.
func (a *tlsTransport) startRecord() error {
	raw := a.raw
	in := &raw.inBuf
	blocking := !a.nonBlocking.Load()
	if in.Len() < recordHeaderLen {
		if !blocking {
			return a.wouldBlock(recordHeaderLen)
		}
		if err := raw.waitInput(recordHeaderLen, nil, nil); err != nil {
			if in.Len() == 0 {
				return transportReadError(raw, err)
			}
			// A truncated header: hand over what there is, crypto/tls
			// reports the unexpected EOF.
			a.recordLeft = in.Len()
			return nil
		}
	}
	var hdr [recordHeaderLen]byte
	in.peekInto(hdr[:])
	length := int(hdr[3])<<8 | int(hdr[4])
	size := recordHeaderLen + length
	if !blocking && length <= maxRecordPayload && in.Len() < size {
		return a.wouldBlock(size)
	}
	a.recordLeft = size
	return nil
}

// completeRecord reports the payload length of the record at the front of
// raw input if all of it is buffered (or if its header announces more than
// crypto/tls accepts, so that crypto/tls rejects it now). Otherwise it
// records in want the raw length that would complete it. Used after the
// handshake, between records.
func (a *tlsTransport) completeRecord() (payload int, ok bool) {
	in := &a.raw.inBuf
	if in.Len() < recordHeaderLen {
		a.want = recordHeaderLen
		return 0, false
	}
	var hdr [recordHeaderLen]byte
	in.peekInto(hdr[:])
	payload = int(hdr[3])<<8 | int(hdr[4])
	if payload <= maxRecordPayload && in.Len() < recordHeaderLen+payload {
		a.want = recordHeaderLen + payload
		return 0, false
	}
	return payload, true
}

// wouldBlock ends a non-blocking Read that cannot make progress until raw
// input holds want bytes; at the peer's EOF it reports io.EOF instead.
func (a *tlsTransport) wouldBlock(want int) error {
	if a.raw.peerClosed.Load() {
		return io.EOF
	}
	a.want = want
	return errWouldBlock
}

// transportReadError turns the end of raw input into io.EOF, which
// crypto/tls expects from a closed peer.
func transportReadError(raw *connection, err error) error {
	if raw.peerClosed.Load() {
		return io.EOF
	}
	return err
}

// Write writes p, whole records from crypto/tls, to the socket with the
// connection's low-level send: crypto/tls serialises its own writes, and a
// Flush holds the connection's write side while it encrypts.
func (a *tlsTransport) Write(p []byte) (int, error) { return a.raw.writeAll(p) }

// Close closes the raw connection.
func (a *tlsTransport) Close() error {
	// The internal close: the user's Close state belongs to the facade.
	a.raw.close()
	return nil
}

// LocalAddr returns the raw connection's local address.
func (a *tlsTransport) LocalAddr() net.Addr { return a.raw.LocalAddr() }

// RemoteAddr returns the raw connection's remote address.
func (a *tlsTransport) RemoteAddr() net.Addr { return a.raw.RemoteAddr() }

// SetDeadline sets the raw connection's deadlines.
func (a *tlsTransport) SetDeadline(t time.Time) error { return a.raw.SetDeadline(t) }

// SetReadDeadline sets the raw connection's read deadline.
func (a *tlsTransport) SetReadDeadline(t time.Time) error { return a.raw.SetReadDeadline(t) }

// SetWriteDeadline sets the raw connection's write deadline; crypto/tls
// uses it to bound the close_notify it sends from Close.
func (a *tlsTransport) SetWriteDeadline(t time.Time) error { return a.raw.SetWriteDeadline(t) }
