package netpoll

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// The Reader side of every connection, written once: plain, TLS and UDP
// differ only in how more input reaches inputBuffer (see layer).

// errInputLimit reports a blocking read larger than the input limit, which
// could never be satisfied because the poller stops reading at the limit.
var errInputLimit = errors.New("netpoll: read larger than the connection's input limit")

// lockReader claims the read side for one zero-copy call. A second
// concurrent reader gets ErrConcurrentAccess rather than a corrupted buffer.
func (c *connection) lockReader() error {
	if c.readerState.CompareAndSwap(sideFree, sideBusy) {
		return nil
	}
	if c.readerState.Load() == sideClosed {
		return c.endOfInputError()
	}
	return Exception(ErrConcurrentAccess, "read")
}

// unlockReader ends a read call. If the connection closed meanwhile, the
// reader is the last user of the input buffer and frees it.
func (c *connection) unlockReader() {
	c.readerState.Store(sideFree)
	if c.life.Load()&lifeClosed != 0 {
		c.freeInput()
	}
}

// beginRead claims the read side and waits until n bytes are buffered; on
// success the caller reads and then calls unlockReader.
func (c *connection) beginRead(n int) error {
	if err := c.lockReader(); err != nil {
		return err
	}
	if err := c.waitRead(n); err != nil {
		c.unlockReader()
		return err
	}
	return nil
}

// Next returns the next n bytes of input and advances past them. It blocks
// until n bytes are buffered, the read timeout passes (ErrReadTimeout), or no
// more input can come (ErrEOF, ErrConnClosed). The slice aliases the input
// buffer until the next Release.
func (c *connection) Next(n int) (p []byte, err error) {
	if err = c.beginRead(n); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	c.inputLent = true
	return c.inputBuffer.Next(n)
}

// Peek returns the next n bytes without advancing, blocking like Next.
func (c *connection) Peek(n int) (buf []byte, err error) {
	if err = c.beginRead(n); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	c.inputLent = true
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
	if err = c.beginRead(n); err != nil {
		return "", err
	}
	defer c.unlockReader()
	return c.inputBuffer.ReadString(n)
}

// ReadBinary returns a copy of the next n bytes, blocking like Next.
func (c *connection) ReadBinary(n int) (p []byte, err error) {
	if err = c.beginRead(n); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	return c.inputBuffer.ReadBinary(n)
}

// ReadByte returns the next byte, blocking like Next.
func (c *connection) ReadByte() (b byte, err error) {
	if err = c.beginRead(1); err != nil {
		return 0, err
	}
	defer c.unlockReader()
	return c.inputBuffer.ReadByte()
}

// Slice returns the next n bytes as an independent zero-copy Reader,
// blocking like Next. It stays valid after this connection's Release and
// after its close: it holds its own count on the memory it shares. As the
// reference's, it releases the input read so far (a reader that only
// slices, as Kitex's multiplexed server does, never calls Release), so
// slices from Next, Peek and Until become invalid.
func (c *connection) Slice(n int) (r Reader, err error) {
	if err = c.beginRead(n); err != nil {
		return nil, err
	}
	defer c.unlockReader()
	r, err = c.inputBuffer.Slice(n)
	c.afterRelease()
	return r, err
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
			c.inputLent = true
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
	c.afterRelease()
	return err
}

// afterRelease notes that the reader released its input: nothing is lent
// any more, and a paused socket may read again (or, under a layer, the
// layer moves on).
func (c *connection) afterRelease() {
	c.inputLent = false
	if c.layer != nil {
		c.layer.released()
	} else {
		c.resumeInputIfDrained()
	}
}

// Len returns the number of input bytes buffered and not yet read.
func (c *connection) Len() (length int) {
	if c.layer != nil {
		return c.layer.buffered()
	}
	return c.inputBuffer.Len()
}

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
	if c.closingStarted() && c.inputBuffer.Len() == 0 && !c.inputEnded() {
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
	c.inputBuffer.consume(n)
	c.inputBuffer.readInto(p[:n])
	err = c.inputBuffer.Release()
	c.afterRelease()
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

// waitReadSlow waits for n bytes within the read timeout (one timer for
// the whole call) and the deadline: on the socket directly, or through the
// layer, which turns what the socket brings into the user's input.
func (c *connection) waitReadSlow(n int) error {
	if n > int(c.maxInput) {
		return fmt.Errorf("%w: %d > %d", errInputLimit, n, int(c.maxInput))
	}
	var timer <-chan time.Time
	if timeout := c.readTimeout.Load(); timeout > 0 {
		timer = c.armTimer(&c.readTimer, time.Duration(timeout))
		defer c.readTimer.Stop()
	}
	deadline := c.readDeadline.wait() // always: a deadline set later must wake this wait
	if c.layer == nil {
		return c.waitInput(n, deadline, timer)
	}
	for {
		if err := c.layer.refill(); err != nil {
			return err
		}
		if c.inputBuffer.Len() >= n {
			return nil
		}
		if c.layer.ended() || c.closingStarted() {
			return c.endOfInputError()
		}
		err := c.layer.await(n, deadline, timer)
		if errors.Is(err, ErrReadTimeout) {
			// The last input may have come with the timeout.
			if c.layer.refill() == nil && c.inputBuffer.Len() >= n && !c.readDeadline.exceeded() {
				return nil
			}
			return err
		}
	}
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
