package netpoll

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// maxFlushSlices bounds the slices handed to one writev.
const maxFlushSlices = 64

// lockWriter claims the write side for one zero-copy call. A second
// concurrent writer gets ErrConcurrentAccess.
func (c *connection) lockWriter() error {
	if c.writerState.CompareAndSwap(sideFree, sideBusy) {
		if c.closing.Load() {
			c.unlockWriter()
			return Exception(ErrConnClosed, "write")
		}
		return nil
	}
	if c.writerState.Load() == sideClosed {
		return Exception(ErrConnClosed, "write")
	}
	return Exception(ErrConcurrentAccess, "write")
}

// unlockWriter ends a write call; after finalize the writer frees the output.
func (c *connection) unlockWriter() {
	c.writerState.Store(sideFree)
	if c.finalized.Load() {
		c.freeOutput()
	}
}

// Malloc reserves n bytes of output, valid until the next Flush.
func (c *connection) Malloc(n int) (buf []byte, err error) {
	if err = c.lockWriter(); err != nil {
		return nil, err
	}
	defer c.unlockWriter()
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
// connection closes (ErrConnClosed). When the write timeout (not a deadline)
// passes, Flush also closes the connection.
func (c *connection) Flush() (err error) {
	if err = c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	if err = c.outputBuffer.Flush(); err != nil {
		return err
	}
	err = c.flushOutput()
	if errors.Is(err, ErrWriteTimeout) && !c.writeDeadline.exceeded() {
		// #6: a peer that took no output for the whole write timeout is
		// gone or hostile. The unsent output cannot be taken back (part of
		// a message may be in the kernel), so the stream is useless, and a
		// handler that goes on would pile up output without bound.
		c.close()
	}
	return err
}

// flushOutput writes the flushed output until it is all sent. The caller
// holds the write side.
func (c *connection) flushOutput() error {
	for !c.outputBuffer.IsEmpty() {
		n, err := c.writeOutput()
		if n > 0 {
			if err := c.outputBuffer.Skip(n); err != nil {
				return err
			}
			if err := c.outputBuffer.Release(); err != nil {
				return err
			}
			c.touch()
		}
		if err != nil {
			if err = c.afterWriteError(err); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeScratch is the slice and iovec space of one writev. It is pooled, not
// kept per connection: output that sits in one node (the common case) needs
// none, and a connection that spans nodes borrows it for one call. Kept per
// connection it cost 2.5 KB of every idle connection's heap.
type writeScratch struct {
	slices [maxFlushSlices][]byte
	iovs   [maxFlushSlices]sys.Iovec
}

var writeScratchPool = sync.Pool{New: func() any { return new(writeScratch) }}

// writeOutput sends the flushed output with one write when it sits in one
// node, else with one writev of up to maxFlushSlices nodes.
func (c *connection) writeOutput() (int, error) {
	first := c.outputBuffer.GetBytes(c.firstSlice[:])
	single := len(first) == 1 && len(first[0]) == c.outputBuffer.Len()
	if single {
		n, err := c.writeSlices(first, nil)
		c.firstSlice[0] = nil
		return n, err
	}
	c.firstSlice[0] = nil
	s := writeScratchPool.Get().(*writeScratch)
	slices := c.outputBuffer.GetBytes(s.slices[:])
	n, err := c.writeSlices(slices, s.iovs[:])
	clear(s.slices[:len(slices)])
	writeScratchPool.Put(s)
	return n, err
}

// writeSlices is one write or writev on fd.
func (c *connection) writeSlices(slices [][]byte, iovs []sys.Iovec) (int, error) {
	if !c.acquireFD() {
		return 0, Exception(ErrConnClosed, "flush")
	}
	defer c.releaseFD()
	var n int
	var err error
	if len(slices) == 1 {
		n, err = sys.Write(c.fd, slices[0])
	} else {
		n, err = sys.Writev(c.fd, slices, iovs)
	}
	c.countWrite(n, err)
	return n, err
}

// countWrite adds one write system call to the metrics.
func (c *connection) countWrite(n int, err error) {
	if n > 0 {
		c.stats.writes.Add(1)
		c.stats.bytesWritten.Add(uint64(n))
	}
	if err != nil && err != syscall.EAGAIN {
		c.stats.writeErrors.Add(1)
	}
}

// afterWriteError waits for the socket to drain after EAGAIN; any other
// error ends the write.
func (c *connection) afterWriteError(err error) error {
	if err != syscall.EAGAIN {
		if c.closing.Load() {
			return Exception(ErrConnClosed, "flush")
		}
		return Exception(err, "flush")
	}
	return c.waitWritable()
}

// waitWritable blocks until the poller sees the socket drain, the write
// deadline or timeout passes, or the connection closes.
func (c *connection) waitWritable() error {
	// Made before write interest is armed, so the poller's wake-up has a channel.
	trigger, closed := c.writeTrigger.get(1), c.closed.get(0)
	if !c.acquireFD() {
		return Exception(ErrConnClosed, "flush")
	}
	err := c.operator.Control(poller.PollR2RW)
	c.releaseFD()
	if err != nil {
		return Exception(ErrConnClosed, "flush")
	}
	var timer <-chan time.Time
	if timeout := c.writeTimeout.Load(); timeout > 0 {
		timer = c.armTimer(&c.writeTimer, time.Duration(timeout))
		defer c.writeTimer.Stop()
	}
	deadlineC := c.writeDeadline.wait() // always: a deadline set later must wake this wait
	select {
	case <-trigger:
		return nil
	case <-closed:
		return Exception(ErrConnClosed, "flush")
	case <-deadlineC:
	case <-timer:
	}
	c.stats.writeTimeouts.Add(1)
	return Exception(ErrWriteTimeout, "")
}

// wakeWriter tells a writer waiting for the socket to drain to try again.
func (c *connection) wakeWriter() { c.writeTrigger.signal() }

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
			err = c.flushOutput()
		}
		if err != nil {
			return 0, c.opError("write", err)
		}
	}
	for n < len(p) {
		written, err := c.writeSlice(p[n:])
		n += written
		if written > 0 {
			c.touch()
		}
		if err != nil {
			if err = c.afterWriteError(err); err != nil {
				return n, c.opError("write", err)
			}
		}
	}
	return n, nil
}

// writeSlice is one write on fd.
func (c *connection) writeSlice(p []byte) (int, error) {
	if !c.acquireFD() {
		return 0, Exception(ErrConnClosed, "write")
	}
	defer c.releaseFD()
	n, err := sys.Write(c.fd, p)
	c.countWrite(n, err)
	return max(n, 0), err
}
