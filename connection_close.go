package netpoll

import (
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// Close closes the connection. It is safe from any goroutine and prompt:
// blocked reads, writes and flushes return ErrConnClosed at once. Input that
// arrived before the peer closed stays readable. The first Close returns
// nil even if the library already closed the connection (the peer closed,
// a timeout fired), as a net.Conn's does; a second returns an error
// matching net.ErrClosed.
func (c *connection) Close() error {
	if c.userClosed.Swap(true) {
		return c.opError("close", Exception(ErrConnClosed, ""))
	}
	c.close()
	return nil
}

// close is the one path that ends a connection, whoever starts it: the user,
// the handler after the peer's EOF, a timeout, or Shutdown. It reports false
// if the connection was already closed. It must not run on the poller
// goroutine, because it runs the close callbacks.
func (c *connection) close() bool {
	if !c.closing.CompareAndSwap(false, true) {
		return false
	}
	// Detach while the fd is surely open: the closing bit is not set yet, so
	// finalize cannot have closed it.
	if c.operator != nil {
		_ = c.operator.Control(poller.PollDetach)
	}
	close(c.closed.get(0))
	if c.counted {
		c.stats.open.Add(-1)
		c.stats.closed.Add(1)
	}
	if old := c.fdRefs.Or(fdClosing); old == 0 {
		c.finalize()
	}
	if c.server != nil {
		c.server.forget(c)
	}
	c.runCloseCallbacks()
	return true
}

// finalize closes the fd and frees what no goroutine uses any more. It runs
// exactly once, when the closing bit is set and no syscall user remains.
func (c *connection) finalize() {
	if !c.detached {
		_ = sys.Close(c.fd)
	}
	if c.operator != nil {
		c.operator.Free()
	}
	c.finalized.Store(true)
	c.freeInput()
	c.freeOutput()
	c.readDeadline.set(time.Time{})
	c.writeDeadline.set(time.Time{})
}

// freeInput returns the input buffer's memory once nobody reads it. Input
// the peer sent before closing is kept for a reader to drain; each Release
// then frees what was read, and the garbage collector takes the rest.
func (c *connection) freeInput() {
	if c.peerClosed.Load() && c.inputBuffer.Len() > 0 {
		return
	}
	if c.readerState.CompareAndSwap(sideFree, sideClosed) {
		_ = c.inputBuffer.Close()
	}
}

// freeOutput returns the output buffer's memory once nobody writes it.
func (c *connection) freeOutput() {
	if c.writerState.CompareAndSwap(sideFree, sideClosed) {
		_ = c.outputBuffer.Close()
	}
}

// AddCloseCallback registers callback to run once after the connection is
// closed; added after the close, it runs at once.
func (c *connection) AddCloseCallback(callback CloseCallback) error {
	if callback == nil {
		return nil
	}
	c.mu.Lock()
	if !c.callbacksRan {
		cold := c.coldLocked()
		cold.closeCallbacks = append(cold.closeCallbacks, callback)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.runCallback("close callback", func() { _ = callback(c.owner) })
	return nil
}

// runCloseCallbacks runs the registered close callbacks, latest first, as
// deferred calls run.
func (c *connection) runCloseCallbacks() {
	var callbacks []CloseCallback
	c.mu.Lock()
	if c.cold != nil {
		callbacks = c.cold.closeCallbacks
		c.cold.closeCallbacks = nil
	}
	c.callbacksRan = true
	c.mu.Unlock()
	for i := len(callbacks) - 1; i >= 0; i-- {
		cb := callbacks[i]
		c.runCallback("close callback", func() { _ = cb(c.owner) })
	}
}

// panicLog limits the lines a panicking handler can make.
var panicLog = newLogLimiter(time.Second)

// runCallback calls user code. A panic costs only this connection: it is
// logged with its stack (rate-limited) and the connection is closed.
func (c *connection) runCallback(what string, f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.stats.panics.Add(1)
			panicLog.log(slog.LevelError, "netpoll: panic in "+what,
				slog.Int("fd", c.fd), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			ok = false
			c.close()
		}
	}()
	f()
	return true
}

// Detach stops polling the connection and hands its fd to the caller, who
// must close it; the connection itself becomes inactive.
func (c *connection) Detach() error {
	c.detached = true
	if !c.close() {
		return Exception(ErrConnClosed, "detach")
	}
	return nil
}
