package netpoll

import "errors"

// The Writer side of every connection, written once: plain, TLS and UDP
// differ only in how the flushed output leaves (see layer).

// lockWriter claims the write side for one zero-copy call. A second
// concurrent writer gets ErrConcurrentAccess; after a close every call gets
// ErrConnClosed.
func (c *connection) lockWriter() error {
	if c.writerState.CompareAndSwap(sideFree, sideBusy) {
		if c.closingStarted() {
			c.unlockWriter()
			return Exception(ErrConnClosed, "write")
		}
		return nil
	}
	if c.closingStarted() || c.writerState.Load() == sideClosed {
		return Exception(ErrConnClosed, "write")
	}
	return Exception(ErrConcurrentAccess, "write")
}

// unlockWriter ends a write call; after the close the writer frees the
// output.
func (c *connection) unlockWriter() {
	c.writerState.Store(sideFree)
	if c.life.Load()&lifeClosed != 0 {
		c.freeOutput()
	}
}

// Malloc reserves n bytes of output, valid until the next Flush.
func (c *connection) Malloc(n int) (buf []byte, err error) {
	if err = c.lockWriter(); err != nil {
		return nil, err
	}
	defer c.unlockWriter()
	c.outputLent = true
	return c.outputBuffer.Malloc(n)
}

// MallocLen returns the bytes written and not yet flushed.
func (c *connection) MallocLen() (length int) { return c.outputBuffer.MallocLen() }

// MallocAck keeps the first n bytes written since the last Flush.
func (c *connection) MallocAck(n int) (err error) {
	if err = c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	return c.outputBuffer.MallocAck(n)
}

// WriteString appends s to the output.
func (c *connection) WriteString(s string) (n int, err error) {
	if err = c.lockWriter(); err != nil {
		return 0, err
	}
	defer c.unlockWriter()
	return c.outputBuffer.WriteString(s)
}

// WriteBinary appends b to the output; large b is referenced until Flush.
func (c *connection) WriteBinary(b []byte) (n int, err error) {
	if err = c.lockWriter(); err != nil {
		return 0, err
	}
	defer c.unlockWriter()
	return c.outputBuffer.WriteBinary(b)
}

// WriteByte appends one byte to the output.
func (c *connection) WriteByte(b byte) (err error) {
	if err = c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	return c.outputBuffer.WriteByte(b)
}

// WriteDirect splices p into the output before the last remainCap bytes of
// the latest Malloc, without copying p.
func (c *connection) WriteDirect(p []byte, remainCap int) (err error) {
	if err = c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	return c.outputBuffer.WriteDirect(p, remainCap)
}

// Append moves w's content to the output without copying.
func (c *connection) Append(w Writer) (err error) {
	if err = c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	return c.outputBuffer.Append(w)
}

// Flush sends everything written. It blocks until all of it is in the
// kernel, the write timeout or deadline passes (ErrWriteTimeout), or the
// connection closes (ErrConnClosed).
//
// When the write timeout (not a deadline) passes, Flush also closes the
// connection: its output is half sent. After any other failure the
// connection stays open and the unsent output keeps its own copy of every
// byte it referenced (a WriteBinary of 4 KiB or more, a WriteDirect), so the
// caller may release or reuse that memory at once; a later Flush sends the
// rest.
func (c *connection) Flush() (err error) {
	if err = c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	if err = c.outputBuffer.Flush(); err != nil {
		return err
	}
	c.outputLent = false
	if err = c.sendOutput(); err != nil {
		c.afterFailedSend(err)
	}
	return err
}

// sendOutput sends the flushed output: through the layer, or straight to
// the socket. The caller holds the write side.
func (c *connection) sendOutput() error {
	if c.layer != nil {
		return c.layer.send()
	}
	return c.flushOutput()
}

// afterFailedSend settles output that could not be sent. A peer that took
// nothing for the whole write timeout is gone or hostile: the connection
// closes, since part of a message may be in the kernel and a handler that
// goes on would pile up output without bound. Otherwise (a deadline, an
// error) the unsent output stops referencing the caller's memory, which the
// documented WriteBinary, Flush, Release sequence gives back to a pool
// right after this returns. Output that was dropped whole (a datagram)
// leaves nothing to settle.
func (c *connection) afterFailedSend(err error) {
	if c.outputBuffer.IsEmpty() {
		return
	}
	if errors.Is(err, ErrWriteTimeout) && !c.writeDeadline.exceeded() {
		c.close()
		return
	}
	c.outputBuffer.ownReferences()
}

// Write writes p, as net.Conn requires: all of it, or an error with the
// count written. It writes from p directly without copying, and blocks while
// the peer does not read, until the write deadline or timeout. Concurrent
// calls are served one at a time.
func (c *connection) Write(p []byte) (n int, err error) {
	writeLock := c.writeLock.get(1)
	if err = c.acquireSerial(writeLock, &c.writeDeadline, c.writeTimeout.Load(), ErrWriteTimeout); err != nil {
		return 0, c.opError("write", err)
	}
	defer func() { <-writeLock }()
	if err = c.lockWriter(); err != nil {
		return 0, c.opError("write", err)
	}
	defer c.unlockWriter()
	if c.writeDeadline.exceeded() {
		return 0, c.opError("write", Exception(ErrWriteTimeout, ""))
	}
	if c.outputBuffer.MallocLen() > 0 || !c.outputBuffer.IsEmpty() {
		// Output written through the Writer goes first, to keep the order.
		if err = c.outputBuffer.Flush(); err == nil {
			c.outputLent = false
			if err = c.sendOutput(); err != nil {
				c.afterFailedSend(err)
			}
		}
		if err != nil {
			return 0, c.writeError(err)
		}
	}
	if c.layer != nil {
		n, err = c.layer.write(p)
	} else {
		n, err = c.writeAll(p)
	}
	return n, c.writeError(err)
}
