package netpoll

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// errInputLimit reports a blocking read larger than the input limit, which
// could never be satisfied because the poller stops reading at the limit.
var errInputLimit = errors.New("netpoll: read larger than the connection's input limit")

// resetLog limits the lines that failed reads (a peer's reset, mostly) make:
// any peer can cause them at will.
var resetLog = newLogLimiter(time.Second)

// lockReader claims the read side for one zero-copy call. A second
// concurrent reader gets ErrConcurrentAccess rather than a corrupted buffer.
func (c *connection) lockReader() error {
	if c.readerState.CompareAndSwap(sideFree, sideBusy) {
		return nil
	}
	if c.readerState.Load() == sideClosed {
		return c.closedReadError()
	}
	return Exception(ErrConcurrentAccess, "read")
}

// unlockReader ends a read call. If the connection was finalized meanwhile,
// the reader is the last user of the input buffer and frees it.
func (c *connection) unlockReader() {
	c.readerState.Store(sideFree)
	if c.finalized.Load() {
		c.freeInput()
	}
}

// closedReadError is the error of a read that no input can satisfy.
func (c *connection) closedReadError() error {
	if c.peerClosed.Load() {
		return Exception(ErrEOF, "")
	}
	return Exception(ErrConnClosed, "")
}

// Next returns the next n bytes of input and advances past them. It blocks
// until n bytes are buffered, the read timeout passes (ErrReadTimeout), or no
// more input can come (ErrEOF, ErrConnClosed). The slice aliases the input
// buffer until the next Release.
func (c *connection) Next(n int) (p []byte, err error) {
	if err = c.lockReader(); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	if err = c.waitRead(n); err != nil {
		return nil, err
	}
	return c.inputBuffer.Next(n)
}

// Peek returns the next n bytes without advancing, blocking like Next.
func (c *connection) Peek(n int) (buf []byte, err error) {
	if err = c.lockReader(); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	if err = c.waitRead(n); err != nil {
		return nil, err
	}
	return c.inputBuffer.Peek(n)
}

// Skip advances past the next n bytes, blocking like Next.
func (c *connection) Skip(n int) (err error) {
	if err = c.lockReader(); err != nil {
		return err
	}
	defer c.unlockReader()
	if err = c.waitRead(n); err != nil {
		return err
	}
	return c.inputBuffer.Skip(n)
}

// ReadString returns the next n bytes as a string, blocking like Next.
func (c *connection) ReadString(n int) (s string, err error) {
	if err = c.lockReader(); err != nil {
		return "", err
	}
	defer c.unlockReader()
	if err = c.waitRead(n); err != nil {
		return "", err
	}
	return c.inputBuffer.ReadString(n)
}

// ReadBinary returns a copy of the next n bytes, blocking like Next.
func (c *connection) ReadBinary(n int) (p []byte, err error) {
	if err = c.lockReader(); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	if err = c.waitRead(n); err != nil {
		return nil, err
	}
	return c.inputBuffer.ReadBinary(n)
}

// ReadByte returns the next byte, blocking like Next.
func (c *connection) ReadByte() (b byte, err error) {
	if err = c.lockReader(); err != nil {
		return 0, err
	}
	defer c.unlockReader()
	if err = c.waitRead(1); err != nil {
		return 0, err
	}
	return c.inputBuffer.ReadByte()
}

// Slice returns the next n bytes as an independent zero-copy Reader,
// blocking like Next. It stays valid after this connection's Release.
func (c *connection) Slice(n int) (r Reader, err error) {
	if err = c.lockReader(); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	if err = c.waitRead(n); err != nil {
		return nil, err
	}
	return c.inputBuffer.Slice(n)
}

// Until returns the input up to and including the first delim, blocking
// until delim arrives. If no more input can come first, it returns an error
// and consumes nothing.
func (c *connection) Until(delim byte) (line []byte, err error) {
	if err = c.lockReader(); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	scanned := 0
	for {
		if i := c.inputBuffer.indexByte(delim, scanned); i >= 0 {
			return c.inputBuffer.Next(i + 1)
		}
		scanned = c.inputBuffer.Len()
		if err = c.waitRead(scanned + 1); err != nil {
			return nil, err
		}
	}
}

// Release frees the input read so far; slices from Next, Peek and Until
// become invalid. It lets a paused connection read again.
func (c *connection) Release() (err error) {
	if err = c.lockReader(); err != nil {
		return err
	}
	defer c.unlockReader()
	err = c.inputBuffer.Release()
	c.resumeInputIfDrained()
	return err
}

// Len returns the number of input bytes buffered and not yet read.
func (c *connection) Len() (length int) { return c.inputBuffer.Len() }

// Read reads input into p, as net.Conn requires: it blocks until some input
// is buffered, returns a bare io.EOF once the peer has closed and every byte
// was read, and honours the read deadline and timeout. Concurrent calls are
// served one at a time.
func (c *connection) Read(p []byte) (n int, err error) {
	readLock := c.readLock.get(1)
	if err = c.acquireSerial(readLock, &c.readDeadline, c.readTimeout.Load(), ErrReadTimeout); err != nil {
		return 0, c.readError(err)
	}
	defer func() { <-readLock }()
	if err = c.lockReader(); err != nil {
		return 0, c.readError(err)
	}
	defer c.unlockReader()
	if c.closing.Load() && !c.peerClosed.Load() {
		return 0, c.readError(Exception(ErrConnClosed, ""))
	}
	if c.readDeadline.exceeded() {
		return 0, c.readError(Exception(ErrReadTimeout, ""))
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err = c.waitRead(1); err != nil {
		return 0, c.readError(err)
	}
	n = min(len(p), c.inputBuffer.Len())
	b, err := c.inputBuffer.Next(n)
	if err != nil {
		return 0, c.readError(err)
	}
	copy(p, b)
	err = c.inputBuffer.Release()
	c.resumeInputIfDrained()
	return n, err
}

// readError gives a net.Conn Read error its usual shape: a bare io.EOF at
// the end of input, otherwise a *net.OpError around the cause.
func (c *connection) readError(err error) error {
	if errors.Is(err, ErrEOF) {
		return io.EOF
	}
	return c.opError("read", err)
}

// acquireSerial takes one of the semaphores that serialise net.Conn calls,
// waiting at most until the deadline, the per-call timeout, or Close.
func (c *connection) acquireSerial(lock chan struct{}, d *deadline, timeout int64, timeoutErr error) error {
	select {
	case lock <- struct{}{}:
		return nil
	default:
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout))
		defer t.Stop()
		timer = t.C
	}
	select {
	case lock <- struct{}{}:
		return nil
	case <-c.closed.get(0):
		return Exception(ErrConnClosed, "")
	case <-d.wait():
		return Exception(timeoutErr, "")
	case <-timer:
		return Exception(timeoutErr, "")
	}
}

// waitRead blocks until n bytes are buffered. The caller holds the read side.
func (c *connection) waitRead(n int) error {
	if n < 0 {
		return fmt.Errorf("netpoll: negative read size %d", n)
	}
	if c.inputBuffer.Len() >= n {
		return nil
	}
	return c.waitReadSlow(n)
}

func (c *connection) waitReadSlow(n int) error {
	if n > int(c.maxInput) {
		return fmt.Errorf("%w: %d > %d", errInputLimit, n, int(c.maxInput))
	}
	var timer <-chan time.Time
	if timeout := c.readTimeout.Load(); timeout > 0 {
		timer = c.armTimer(&c.readTimer, time.Duration(timeout))
		defer c.readTimer.Stop()
	}
	deadlineC := c.readDeadline.wait() // always: a deadline set later must wake this wait
	return c.waitInput(n, deadlineC, timer)
}

// waitInput blocks until n bytes of input are buffered, no more can come
// (ErrEOF, ErrConnClosed), or deadline or timer fires (ErrReadTimeout). The
// caller holds the read side and owns the timer. Plain reads and the TLS
// layer (waiting for whole records) share it, so the hand-shake with the
// poller below exists once.
func (c *connection) waitInput(n int, deadline <-chan struct{}, timer <-chan time.Time) error {
	if c.inputBuffer.Len() >= n {
		return nil
	}
	c.resumeInputIfDrained()
	// Make the channels before looking at Len, so a wake-up the poller sends
	// after storing input cannot fall between the look and the wait. Then
	// publish what we wait for before checking Len: the poller stores input
	// before it loads waitReadSize, so one of the two sees the other.
	trigger, closed := c.readTrigger.get(1), c.closed.get(0)
	c.waitReadSize.Store(int64(n))
	defer c.waitReadSize.Store(0)
	for c.inputBuffer.Len() < n {
		if c.peerClosed.Load() {
			if c.inputBuffer.Len() >= n {
				return nil
			}
			return Exception(ErrEOF, "")
		}
		if c.closing.Load() {
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
	if c.inputBuffer.Len() >= n && !c.readDeadline.exceeded() {
		return nil
	}
	c.stats.readTimeouts.Add(1)
	return Exception(ErrReadTimeout, "")
}

// armTimer (re)starts the timer in *t for d and returns its channel. Since Go
// 1.23 Reset drops any stale expiry, so the channel fires only for this wait.
func (c *connection) armTimer(t **time.Timer, d time.Duration) <-chan time.Time {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	return (*t).C
}

// wakeReader tells a blocked reader to look at the input again.
func (c *connection) wakeReader() { c.readTrigger.signal() }

// resumeInputIfDrained restarts reading a socket that was paused for too
// much unread input, once the reader has consumed half of it.
func (c *connection) resumeInputIfDrained() {
	if c.inputPaused.Load() && c.inputBuffer.Len() <= int(c.maxInput)/2 && c.inputPaused.CompareAndSwap(true, false) {
		if c.acquireFD() {
			_ = c.operator.Control(poller.PollResumeRead)
			c.releaseFD()
		}
	}
}

// onReadable reads what the socket has into the input buffer.
// Called on the poller goroutine; must not block.
func (c *connection) onReadable(_ poller.Poll) error {
	if !c.acquireFD() {
		return nil
	}
	defer c.releaseFD()
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
	buf := c.inputBuffer.book(int(c.bookSize), maxBookSize)
	n, err := sys.Read(c.fd, buf)
	if n > 0 {
		c.stats.reads.Add(1)
		c.stats.bytesRead.Add(uint64(n))
		length, _ := c.inputBuffer.bookAck(n)
		c.adaptBookSize(n, len(buf))
		c.onInput(length)
		return nil
	}
	// Nothing read: end the booking, so the buffer does not keep the booked
	// node (and its memory) until the next read.
	_, _ = c.inputBuffer.bookAck(0)
	if err == syscall.EAGAIN {
		return nil
	}
	// n == 0 is the peer's FIN; an error (ECONNRESET) ends input the same way.
	if err != nil {
		c.stats.peerResets.Add(1)
		resetLog.log(slog.LevelDebug, "netpoll: read failed, input closed",
			slog.Int("fd", c.fd), slog.String("peer", addrString(c.RemoteAddr())), slog.Any("error", err))
	}
	c.onPeerClosed()
	return nil
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

// onInput runs on the poller after input was stored.
func (c *connection) onInput(length int) {
	c.touch()
	if w := c.waitReadSize.Load(); w > 0 && int64(length) >= w {
		c.wakeReader()
	}
	if length >= int(c.maxInput) && c.inputPaused.CompareAndSwap(false, true) {
		_ = c.operator.Control(poller.PollPauseRead)
	}
	if c.onRequest.Load() != nil {
		c.kickHandler()
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
