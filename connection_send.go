package netpoll

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// The socket side of a connection's output: write and writev from the
// writer's own goroutine, waiting for the poller only while the socket is
// full. Plain connections send their output buffer here; TLS sends its
// records through writeAll.

// maxFlushSlices bounds the slices handed to one writev.
const maxFlushSlices = 64

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
	return max(n, 0), err
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
		if c.closingStarted() {
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

// writeAll writes p to the socket from p itself: all of it, or an error
// with the count written. It waits while the socket is full, within the
// write deadline and timeout. The caller holds the write side (a TLS
// layer's records are written here under the TLS writer's hold).
func (c *connection) writeAll(p []byte) (n int, err error) {
	for n < len(p) {
		written, err := c.writeSlice(p[n:])
		n += written
		if written > 0 {
			c.touch()
		}
		if err != nil {
			if err = c.afterWriteError(err); err != nil {
				return n, err
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

// writeError wraps err for the net.Conn Write in a *net.OpError, unless it
// already is one.
func (c *connection) writeError(err error) error {
	if err == nil {
		return nil
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return err
	}
	return c.opError("write", err)
}
