package netpoll

import (
	"errors"
	"net"
)

// The plaintext Writer of a TLS connection: writes fill the plaintext
// output buffer, and Flush encrypts it with tls.Conn.Write, whose records go
// to the raw socket from the flushing goroutine.

// lockWriter claims the plaintext write side for one call.
func (t *tlsConnection) lockWriter() error {
	if t.writerState.CompareAndSwap(sideFree, sideBusy) {
		if t.raw.closing.Load() {
			t.unlockWriter()
			return Exception(ErrConnClosed, "write")
		}
		return nil
	}
	if t.writerState.Load() == sideClosed {
		return Exception(ErrConnClosed, "write")
	}
	return Exception(ErrConcurrentAccess, "write")
}

// unlockWriter ends a write call; after the close the last writer frees.
func (t *tlsConnection) unlockWriter() {
	t.writerState.Store(sideFree)
	if t.released.Load() {
		t.freeOutput()
	}
}

// Malloc reserves n bytes of output, valid until the next Flush.
func (t *tlsConnection) Malloc(n int) (buf []byte, err error) {
	if err = t.lockWriter(); err != nil {
		return nil, err
	}
	defer t.unlockWriter()
	return t.out.Malloc(n)
}

// MallocLen returns the bytes written and not yet flushed.
func (t *tlsConnection) MallocLen() (length int) { return t.out.MallocLen() }

// MallocAck keeps the first n bytes written since the last Flush.
func (t *tlsConnection) MallocAck(n int) (err error) {
	if err = t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	return t.out.MallocAck(n)
}

// WriteString appends s to the output.
func (t *tlsConnection) WriteString(s string) (n int, err error) {
	if err = t.lockWriter(); err != nil {
		return 0, err
	}
	defer t.unlockWriter()
	return t.out.WriteString(s)
}

// WriteBinary appends b to the output; large b is referenced until Flush.
func (t *tlsConnection) WriteBinary(b []byte) (n int, err error) {
	if err = t.lockWriter(); err != nil {
		return 0, err
	}
	defer t.unlockWriter()
	return t.out.WriteBinary(b)
}

// WriteByte appends one byte to the output.
func (t *tlsConnection) WriteByte(b byte) (err error) {
	if err = t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	return t.out.WriteByte(b)
}

// WriteDirect splices p into the output before the last remainCap bytes of
// the latest Malloc, without copying p.
func (t *tlsConnection) WriteDirect(p []byte, remainCap int) (err error) {
	if err = t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	return t.out.WriteDirect(p, remainCap)
}

// Append moves w's content to the output without copying.
func (t *tlsConnection) Append(w Writer) (err error) {
	if err = t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	return t.out.Append(w)
}

// Flush encrypts and sends everything written. It blocks until all records
// are in the kernel, the write timeout or deadline passes (ErrWriteTimeout),
// or the connection closes (ErrConnClosed). After a failed Flush the TLS
// session cannot write again: a record may have gone out in part.
func (t *tlsConnection) Flush() (err error) {
	if err = t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	if err = t.out.Flush(); err != nil {
		return err
	}
	return t.flushOutput()
}

// flushOutput encrypts the flushed output. Small pieces are gathered into
// one record, so a reply written in parts costs one record and one write.
// The caller holds the write side.
func (t *tlsConnection) flushOutput() error {
	if t.out.IsEmpty() {
		return nil
	}
	if err := t.handshake(); err != nil {
		return err
	}
	for !t.out.IsEmpty() {
		slices := t.out.GetBytes(t.slices)
		chunk := slices[0]
		if len(slices) > 1 && len(chunk) < maxPlaintext {
			t.scratch = t.scratch[:0]
			for _, s := range slices {
				room := maxPlaintext - len(t.scratch)
				if room == 0 {
					break
				}
				t.scratch = append(t.scratch, s[:min(len(s), room)]...)
			}
			chunk = t.scratch
		}
		n, err := t.conn.Write(chunk)
		if n > 0 {
			if serr := t.out.Skip(n); serr != nil {
				return serr
			}
			if rerr := t.out.Release(); rerr != nil {
				return rerr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Write encrypts and writes p, as net.Conn requires: all of it, or an
// error with the count written. Output written through the Writer goes
// first. Concurrent calls are served one at a time.
func (t *tlsConnection) Write(p []byte) (n int, err error) {
	raw := t.raw
	if err = raw.acquireSerial(t.writeLock, &raw.writeDeadline, raw.writeTimeout.Load(), ErrWriteTimeout); err != nil {
		return 0, raw.opError("write", err)
	}
	defer func() { <-t.writeLock }()
	if err = t.lockWriter(); err != nil {
		return 0, raw.opError("write", err)
	}
	defer t.unlockWriter()
	if raw.writeDeadline.exceeded() {
		return 0, raw.opError("write", Exception(ErrWriteTimeout, ""))
	}
	if t.out.MallocLen() > 0 || !t.out.IsEmpty() {
		if err = t.out.Flush(); err == nil {
			err = t.flushOutput()
		}
		if err != nil {
			return 0, t.writeError(err)
		}
	}
	if err = t.handshake(); err != nil {
		return 0, t.writeError(err)
	}
	n, err = t.conn.Write(p)
	return n, t.writeError(err)
}

// writeError wraps err in a *net.OpError unless the raw write already did.
func (t *tlsConnection) writeError(err error) error {
	if err == nil {
		return nil
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return err
	}
	return t.raw.opError("write", err)
}
