package netpoll

import (
	"log/slog"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// The socket side of a connection's input: the poller reads into inBuf,
// and a reader waits for it. Every transport's input starts here (TLS
// decrypts from inBuf, a UDP session's datagrams land in it).

// resetLog limits the lines that failed reads (a peer's reset, mostly) make:
// any peer can cause them at will.
var resetLog = newLogLimiter(time.Second)

// waitInput blocks until n bytes are in inBuf, no more can come (ErrEOF,
// ErrConnClosed), or deadline or timer fires (ErrReadTimeout). The caller
// holds the read side and owns the timer.
func (c *connection) waitInput(n int, deadline <-chan struct{}, timer <-chan time.Time) error {
	in := &c.inBuf
	if in.Len() >= n {
		return nil
	}
	// Make the channels before looking at Len, so a wake-up the poller sends
	// after storing input cannot fall between the look and the wait. Then
	// publish what we wait for before checking Len: the poller stores input
	// before it loads waitReadSize, so one of the two sees the other.
	trigger, closed := c.readTrigger.get(1), c.closed.get(0)
	c.waitReadSize.Store(int64(n))
	defer c.waitReadSize.Store(0)
	// A reader that needs more than is buffered must get it even when the
	// poller paused at the input limit and less than half was consumed:
	// n is at most the limit, so reading on can satisfy it. After the
	// store above: a pause made meanwhile sees it (pauseInput).
	c.resumeInput()
	for in.Len() < n {
		if c.peerClosed.Load() {
			if in.Len() >= n {
				return nil
			}
			return Exception(ErrEOF, "")
		}
		if c.closingStarted() {
			return Exception(ErrConnClosed, "")
		}
		select {
		case <-trigger:
		case <-closed:
		case <-deadline:
			return c.readTimedOut(n)
		case <-timer:
			return c.readTimedOut(n)
		}
	}
	return nil
}

// readTimedOut settles the race between a timeout and the last input.
func (c *connection) readTimedOut(n int) error {
	if c.inBuf.Len() >= n && !c.readDeadline.exceeded() {
		return nil
	}
	c.stats.readTimeouts.Add(1)
	return Exception(ErrReadTimeout, "")
}

// wakeReader tells a blocked reader to look at the input again.
func (c *connection) wakeReader() { c.readTrigger.signal() }

// resumeInputIfDrained restarts reading a socket that was paused for too
// much unread input, once the reader has consumed half of it.
func (c *connection) resumeInputIfDrained() {
	if c.inputPaused.Load() && c.inBuf.Len() <= int(c.maxInput)/2 {
		c.resumeInput()
	}
}

// resumeInput restarts reading a socket paused at the input limit.
func (c *connection) resumeInput() {
	if c.inputPaused.Load() && c.inputPaused.CompareAndSwap(true, false) {
		if c.acquireFD() {
			_ = c.operator.Control(poller.PollResumeRead)
			c.releaseFD()
		}
	}
}

// wantInput is what a reader that is not blocked (the framing loop) calls
// when it needs more input than is buffered: if the poller paused at the
// input limit, it reads on.
func (c *connection) wantInput() { c.resumeInput() }

// onReadable reads what the socket has into the input buffer.
// Called on the poller goroutine; must not block.
func (c *connection) onReadable(_ poller.Poll) error {
	if !c.acquireFD() {
		return nil
	}
	defer c.releaseOnPoller()
	if c.connecting.Load() {
		// A failed connect reports HUP/ERR; the dialer reads the error.
		c.wakeWriter()
		return nil
	}
	if c.peerClosed.Load() {
		// Read interest was dropped at EOF, so only HUP or ERR brings us
		// here, level-triggered: stop watching, and let a blocked Flush see
		// the error.
		_ = c.operator.Control(poller.PollDetach)
		c.wakeWriter()
		return nil
	}
	in := &c.inBuf
	buf := in.book(int(c.bookSize), maxBookSize)
	n, err := sys.Read(c.fd, buf)
	if n > 0 {
		c.stats.reads.Add(1)
		c.stats.bytesRead.Add(uint64(n))
		length, _ := in.bookAck(n)
		c.adaptBookSize(n, len(buf))
		c.onInput(length)
		return nil
	}
	// Nothing read: end the booking, so the buffer does not keep the booked
	// node (and its memory) until the next read.
	_, _ = in.bookAck(0)
	if err == syscall.EAGAIN {
		return nil
	}
	c.onInputEnded(err)
	return nil
}

// onInputEnded handles a read that returned no input: n == 0 is the peer's
// FIN; an error (ECONNRESET) ends input the same way.
// Called on the poller goroutine.
func (c *connection) onInputEnded(err error) {
	if err != nil {
		c.stats.peerResets.Add(1)
		resetLog.logContext(*c.ctx.Load(), slog.LevelDebug, "netpoll: read failed, input closed",
			slog.Int("fd", c.fd), slog.String("peer", addrString(c.RemoteAddr())), slog.Any("error", err))
	}
	c.onPeerClosed()
}

// onData stores input the io_uring engine received for c (its multishot
// receive; see poller.Receiver): the same as onReadable after its read,
// with a copy from the poller's buffer in place of the read. data is empty
// at the peer's EOF or with the receive's error; more says the socket held
// input beyond data.
// Called on the poller goroutine; must not block.
func (c *connection) onData(data []byte, more bool, err error) {
	if !c.acquireFD() {
		return // closing: nobody will read it
	}
	defer c.releaseOnPoller()
	if c.peerClosed.Load() {
		return
	}
	if len(data) == 0 {
		c.onInputEnded(err)
		return
	}
	in := &c.inBuf
	length := 0
	for len(data) > 0 {
		// A completion goes into the tail if it fits whole, else into a
		// new node of at least its size, so that one completion's bytes
		// are never split over two nodes, which a handler's Next(Len())
		// must copy to join. Input of several completions that waits for
		// the handler still spans nodes: a 64 KiB stream on an
		// incremental ring spent 6.2% of its samples copying in Next
		// before this and 6.6% after; its MB/s rose about 5% (interleaved,
		// 2,535-2,734 against 2,687-3,059). Booking bookSize whatever the
		// completion's size, as a read does, would link a new node for
		// every completion smaller than it and waste most of each (the
		// flood fault test saw 62 MB booked for 17 MB of input). bookSize
		// adapts to the completions as it does to reads.
		size := max(int(c.bookSize), len(data))
		buf := in.bookSized(min(len(data), maxBookSize), size, maxBookSize)
		if buf == nil {
			return // the buffer was closed
		}
		n := copy(buf, data)
		data = data[n:]
		length, _ = in.bookAck(n)
		c.stats.bytesRead.Add(uint64(n))
		filled := n
		if more {
			filled = size // the receive was cut short by its buffer, not by the input
		}
		c.adaptBookSize(filled, size)
	}
	c.stats.reads.Add(1)
	c.onInput(length)
}

// adaptBookSize grows the read size while reads fill it and shrinks it when
// they use little, so small messages use small nodes.
func (c *connection) adaptBookSize(n, booked int) {
	switch {
	case n == booked && c.bookSize < maxBookSize:
		c.bookSize *= 2
	case n < booked/8 && int(c.bookSize) > int(readBufferSize.Load()):
		c.bookSize /= 2
	}
}

// streaming reports whether c's input comes as a stream: its read size
// has grown to four times the configured one, which takes reads or
// receives that fill it (or, for a receive, leave input behind) twice in a
// row; and, once so, until small reads have brought the read size back.
// The io_uring engine then reads c's input straight into inBuf rather than
// receive it and copy it (poller.Receiver).
// Called on the poller goroutine.
func (c *connection) streaming(reading bool) bool {
	base := int32(readBufferSize.Load())
	if reading {
		return c.bookSize > base
	}
	return c.bookSize >= 4*base
}

// onInput runs after input was stored in inBuf, on the poller (or, for a
// UDP session, on the reader's side moving the next datagram in).
func (c *connection) onInput(length int) {
	c.touch()
	if w := c.waitReadSize.Load(); w > 0 && int64(length) >= w {
		c.wakeReader()
		if !readerWoken.Load() { // a shared line: write it only when it changes
			readerWoken.Store(true)
		}
	}
	if length >= int(c.maxInput) && c.inputPaused.CompareAndSwap(false, true) {
		c.pauseInput()
	}
	if c.onRequest.Load() != nil {
		c.kickHandler()
	}
}

// pauseInput stops reading c's socket at the input limit, after onInput
// set inputPaused. A reader waits for at most maxInput bytes, so a pause
// made with maxInput buffered never stalls one. But the length onInput
// judged by may be stale: the reader can consume concurrently, and a
// pause that lands after it has released down to half the limit (when it
// would have resumed), or after it began to wait for more than is left,
// holds the socket with nobody to resume it; so does a pause whose resume,
// from a reader that saw inputPaused set, ran before the pause itself and
// found nothing to change. TestPauseAtTheInputLimitKeepsOrder stalled so
// under load (4 processes at once, 40 runs each: 27 stalls of 160 on
// epoll, some on io_uring). So once the pause
// is in place it is undone in each of those cases; waitInput publishes
// waitReadSize before it looks at inputPaused, and this looks at them in
// the other order, so one of the two sees the other.
// Called on the poller goroutine.
func (c *connection) pauseInput() {
	_ = c.operator.Control(poller.PollPauseRead)
	switch {
	case !c.inputPaused.Load():
		_ = c.operator.Control(poller.PollResumeRead) // a resume raced ahead of the pause
	case c.inBuf.Len() <= int(c.maxInput)/2, c.waitReadSize.Load() > int64(c.inBuf.Len()):
		c.resumeInput()
	}
}

// onPeerClosed records that no more input will come, wakes the reader, and
// lets the handler goroutine finish the connection.
// Called on the poller goroutine.
func (c *connection) onPeerClosed() {
	if !c.peerClosed.CompareAndSwap(false, true) {
		return
	}
	// Stop read interest: EPOLLRDHUP is level-triggered and would repeat.
	// Write interest stays, so a reply to a half-close can still drain.
	_ = c.operator.Control(poller.PollPauseRead)
	c.wakeReader()
	if !c.connectPending.Load() {
		c.startDisconnect()
	}
	c.kickHandler()
}

// onWritable wakes the goroutine waiting for the socket to drain (a Flush,
// or a dial in progress). Write interest is dropped here, on the poller, so
// a level-triggered EPOLLOUT cannot repeat before the writer runs.
// Called on the poller goroutine.
func (c *connection) onWritable(p poller.Poll) error {
	_ = c.operator.Control(poller.PollRW2R)
	c.wakeWriter()
	return nil
}

// onHangup wakes a writer so it meets the error; input-side hang-ups were
// handled by onReadable, which the poller calls first.
// Called on the poller goroutine.
func (c *connection) onHangup(p poller.Poll) error {
	if c.connecting.Load() {
		// Level-triggered ERR would repeat until the dialer closes the fd.
		_ = c.operator.Control(poller.PollDetach)
	}
	c.wakeWriter()
	return nil
}
