package netpoll

import (
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// A connection's lifecycle is one word, life, and it goes one way:
//
//	         close (the user, the handler after the peer's EOF,
//	         a timeout, Shutdown, a panic, a failed handshake)
//	open ──────────────────────────────────────────────────▶ closing
//	                                                            │ the last holder lets go
//	                                                            ▼
//	                                                          closed
//
// A holder is a goroutine that uses the fd or the buffers in a way that a
// close must wait for: one inside a syscall on the fd (acquireFD), and one
// running user code or the code that serves it (hold): OnPrepare,
// OnConnect, OnRequest, OnDisconnect, a TLS handshake.
// close marks the word closing, detaches the fd from its poller and wakes
// every waiter; it frees nothing while a holder remains. The holder that
// leaves last, or close itself when there is none, moves the word to closed
// and runs finalize exactly once: the fd is closed (so its number is never
// reused under a syscall), the buffers go back to the pools, and then the
// close callbacks run — never while a handler still runs, as the
// reference does, and never on a poller goroutine.
//
// The zero-copy sides have owners of their own (readerState, writerState):
// finalize frees a side's buffer only when no call holds that side, and
// otherwise the call frees it when it ends. Memory a caller may still hold
// — slices from Next, Peek or Until not yet released, a Malloc not yet
// flushed — is never given back to a pool by a close: it is left to the
// garbage collector (see freeInput and freeOutput).
//
// Bit layout of life:
//
//	bits 0–31  holders
//	bit 32     lifeClosing: close has begun; no new syscall user may enter
//	bit 33     lifeClosed: finalize has run, or is running
//	bit 34     lifeKeepFD: finalize leaves the fd open (Detach, or a UDP
//	           session, whose fd is its listener's)
const (
	lifeHolder  int64 = 1
	lifeHolders int64 = 1<<32 - 1
	lifeClosing int64 = 1 << 32
	lifeClosed  int64 = 1 << 33
	lifeKeepFD  int64 = 1 << 34
)

// closingStarted reports whether close has begun.
func (c *connection) closingStarted() bool { return c.life.Load()&lifeClosing != 0 }

// acquireFD reports whether the fd is still open and not closing, and if so
// keeps it open until releaseFD. Every syscall on fd sits between the two.
func (c *connection) acquireFD() bool {
	for {
		v := c.life.Load()
		if v&lifeClosing != 0 {
			return false
		}
		if c.life.CompareAndSwap(v, v+lifeHolder) {
			return true
		}
	}
}

// releaseFD ends a syscall user. Not for the poller goroutine: see
// releaseOnPoller.
func (c *connection) releaseFD() { c.release(false) }

// releaseOnPoller is releaseFD for the poller goroutine: a finalize it
// triggers hands the close callbacks to the runner.
func (c *connection) releaseOnPoller() { c.release(true) }

// hold keeps the buffers, and the fd, of a connection that is not yet
// closed until release: user code runs between the two. It reports false
// once the connection is closed.
func (c *connection) hold() bool {
	for {
		v := c.life.Load()
		if v&lifeClosed != 0 {
			return false
		}
		if c.life.CompareAndSwap(v, v+lifeHolder) {
			return true
		}
	}
}

// release ends a holder; the last one out after close finalizes.
func (c *connection) release(onPoller bool) {
	v := c.life.Add(-lifeHolder)
	if v&lifeHolders == 0 && v&(lifeClosing|lifeClosed) == lifeClosing {
		c.tryFinalize(onPoller)
	}
}

// tryFinalize moves a closing connection without holders to closed and
// finalizes it; of several callers, one wins.
func (c *connection) tryFinalize(onPoller bool) {
	for {
		v := c.life.Load()
		if v&lifeHolders != 0 || v&(lifeClosing|lifeClosed) != lifeClosing {
			return
		}
		if c.life.CompareAndSwap(v, v|lifeClosed) {
			c.finalize(v&lifeKeepFD != 0, onPoller)
			return
		}
	}
}

// IsActive reports whether the connection is open.
func (c *connection) IsActive() bool { return !c.closingStarted() }

// Close closes the connection. It is safe from any goroutine and prompt:
// blocked reads, writes and flushes return ErrConnClosed at once. Input that
// arrived before the peer closed stays readable. The first Close returns
// nil even if the library already closed the connection (the peer closed,
// a timeout fired), as a net.Conn's does; a second returns an error
// matching net.ErrClosed. The fd is closed, and the close callbacks run,
// once no handler of the connection is running.
func (c *connection) Close() error {
	if c.userClosed.Swap(true) {
		return c.opError("close", Exception(ErrConnClosed, ""))
	}
	c.close()
	return nil
}

// close is the one path that ends a connection, whoever starts it. It
// reports false if the connection was already closing.
func (c *connection) close() bool { return c.beginClose(0) }

// beginClose moves c from open to closing, with the extra bits in the same
// step (lifeKeepFD for Detach), and reports whether this call did it.
func (c *connection) beginClose(extra int64) bool {
	for {
		v := c.life.Load()
		if v&lifeClosing != 0 {
			return false
		}
		// Take a holder in the same step, so the fd stays open while we
		// detach it below.
		if c.life.CompareAndSwap(v, (v|lifeClosing|extra)+lifeHolder) {
			break
		}
	}
	if c.operator != nil {
		_ = c.operator.Control(poller.PollDetach)
	}
	close(c.closed.get(0))
	if c.counted {
		c.stats.open.Add(-1)
		c.stats.closed.Add(1)
	}
	if c.server != nil {
		c.server.forget(c)
	}
	c.release(false)
	return true
}

// finalize closes the fd, frees what no goroutine holds any more, and runs
// the close callbacks. It runs exactly once, when c is closing and no holder
// remains.
func (c *connection) finalize(keepFD, onPoller bool) {
	if !keepFD {
		_ = sys.Close(c.fd)
	}
	if c.operator != nil {
		c.operator.Free()
	}
	c.freeInput()
	c.freeOutput()
	c.readDeadline.set(time.Time{})
	c.writeDeadline.set(time.Time{})
	if onPoller {
		runTask(*c.ctx.Load(), c.runCloseCallbacks)
		return
	}
	c.runCloseCallbacks()
}

// freeInput disposes of the input buffers once nobody reads them: the
// socket's and, under a layer, the layer's. Input the peer sent before
// closing stays for a reader to drain (each Release frees what was read,
// and the garbage collector takes the rest). Slices a reader was handed
// and has not released may still be in use: then the memory goes to the
// garbage collector, not back to a pool.
func (c *connection) freeInput() {
	if c.inputKept() {
		return // readable until drained; the reader's Releases free it
	}
	if !c.readerState.CompareAndSwap(sideFree, sideClosed) {
		return // the reader frees it when its call ends (unlockReader)
	}
	if c.inputBuffer != &c.inBuf {
		_ = c.inBuf.Close() // a layer's raw input: read only by the layer, never lent
	}
	if c.inputLent {
		c.inputBuffer.abandon()
		return
	}
	_ = c.inputBuffer.Close()
}

// inputKept reports whether input from before the peer's close remains to
// be read after the connection closed.
func (c *connection) inputKept() bool {
	return c.inputBuffer.Len() > 0 && c.inputEnded()
}

// freeOutput disposes of the output buffer once nobody writes it. Memory
// handed out by Malloc and not yet flushed may still be written to by its
// caller: it goes to the garbage collector, not back to a pool.
func (c *connection) freeOutput() {
	if !c.writerState.CompareAndSwap(sideFree, sideClosed) {
		return // the writer frees it when its call ends (unlockWriter)
	}
	if c.outputLent {
		c.outputBuffer.abandon()
		return
	}
	_ = c.outputBuffer.Close()
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
			panicLog.logContext(*c.ctx.Load(), slog.LevelError, "netpoll: panic in "+what,
				slog.Int("fd", c.fd), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			ok = false
			c.close()
		}
	}()
	f()
	return true
}

// Detach stops polling the connection and hands its fd to the caller, who
// must close it; the connection itself becomes inactive. If the connection
// was already closing, the fd is not the caller's: Detach returns
// ErrConnClosed and the library closes the fd.
func (c *connection) Detach() error {
	if !c.beginClose(lifeKeepFD) {
		return Exception(ErrConnClosed, "detach")
	}
	return nil
}
