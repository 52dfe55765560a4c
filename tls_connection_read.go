package netpoll

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// The plaintext Reader of a TLS connection. It mirrors connection_read.go
// over the plaintext buffer; a read that needs more plaintext decrypts what
// raw input holds (pull) and otherwise waits for the poller to bring more.

// lockReader claims the plaintext read side for one call.
func (t *tlsConnection) lockReader() error {
	if t.readerState.CompareAndSwap(sideFree, sideBusy) {
		return nil
	}
	if t.readerState.Load() == sideClosed {
		return t.closedReadError()
	}
	return Exception(ErrConcurrentAccess, "read")
}

// unlockReader ends a read call; after the close the last reader frees.
func (t *tlsConnection) unlockReader() {
	t.readerState.Store(sideFree)
	if t.released.Load() {
		t.freeInput()
	}
}

// closedReadError is the error of a read that no plaintext can satisfy.
func (t *tlsConnection) closedReadError() error {
	if t.readErr != nil && !t.eof.Load() {
		return t.readErr
	}
	if t.eof.Load() || t.raw.peerClosed.Load() {
		return Exception(ErrEOF, "")
	}
	return Exception(ErrConnClosed, "")
}

// waitRead blocks until n bytes of plaintext are buffered. The caller holds
// the read side.
func (t *tlsConnection) waitRead(n int) error {
	if n < 0 {
		return fmt.Errorf("netpoll: negative read size %d", n)
	}
	if t.plain.Len() >= n {
		return nil
	}
	return t.waitReadSlow(n)
}

// waitReadSlow decrypts and waits until n bytes of plaintext are buffered,
// within the read timeout (one timer for the whole call) and deadline.
func (t *tlsConnection) waitReadSlow(n int) error {
	raw := t.raw
	if n > int(raw.maxInput) {
		return fmt.Errorf("%w: %d > %d", errInputLimit, n, int(raw.maxInput))
	}
	var timer <-chan time.Time
	if timeout := raw.readTimeout.Load(); timeout > 0 {
		timer = raw.armTimer(&t.readTimer, time.Duration(timeout))
		defer t.readTimer.Stop()
	}
	deadlineC := raw.readDeadline.wait() // always: a deadline set later must wake this wait
	for {
		if _, err := t.pull(); err != nil {
			return err
		}
		if t.plain.Len() >= n {
			return nil
		}
		if t.eof.Load() {
			return Exception(ErrEOF, "")
		}
		if raw.closing.Load() {
			return t.closedReadError()
		}
		// want is the raw length at which the next record is complete; the
		// peer's EOF or the close is seen by the next pull.
		err := raw.waitInput(t.transport.want, deadlineC, timer)
		if errors.Is(err, ErrReadTimeout) {
			if _, perr := t.pull(); perr == nil && t.plain.Len() >= n && !raw.readDeadline.exceeded() {
				return nil
			}
			return err
		}
	}
}

// Next returns the next n bytes of plaintext and advances past them. It
// blocks until they are decrypted, the read timeout passes (ErrReadTimeout),
// or no more can come (ErrEOF after close_notify or FIN, ErrConnClosed).
// The slice aliases the plaintext buffer until the next Release.
func (t *tlsConnection) Next(n int) (p []byte, err error) {
	if err = t.lockReader(); err != nil {
		return nil, err
	}
	defer t.unlockReader()
	if err = t.waitRead(n); err != nil {
		return nil, err
	}
	return t.plain.Next(n)
}

// Peek returns the next n bytes without advancing, blocking like Next.
func (t *tlsConnection) Peek(n int) (buf []byte, err error) {
	if err = t.lockReader(); err != nil {
		return nil, err
	}
	defer t.unlockReader()
	if err = t.waitRead(n); err != nil {
		return nil, err
	}
	return t.plain.Peek(n)
}

// Skip advances past the next n bytes, blocking like Next.
func (t *tlsConnection) Skip(n int) (err error) {
	if err = t.lockReader(); err != nil {
		return err
	}
	defer t.unlockReader()
	if err = t.waitRead(n); err != nil {
		return err
	}
	return t.plain.Skip(n)
}

// ReadString returns the next n bytes as a string, blocking like Next.
func (t *tlsConnection) ReadString(n int) (s string, err error) {
	if err = t.lockReader(); err != nil {
		return "", err
	}
	defer t.unlockReader()
	if err = t.waitRead(n); err != nil {
		return "", err
	}
	return t.plain.ReadString(n)
}

// ReadBinary returns a copy of the next n bytes, blocking like Next.
func (t *tlsConnection) ReadBinary(n int) (p []byte, err error) {
	if err = t.lockReader(); err != nil {
		return nil, err
	}
	defer t.unlockReader()
	if err = t.waitRead(n); err != nil {
		return nil, err
	}
	return t.plain.ReadBinary(n)
}

// ReadByte returns the next byte, blocking like Next.
func (t *tlsConnection) ReadByte() (b byte, err error) {
	if err = t.lockReader(); err != nil {
		return 0, err
	}
	defer t.unlockReader()
	if err = t.waitRead(1); err != nil {
		return 0, err
	}
	return t.plain.ReadByte()
}

// Slice returns the next n bytes as an independent zero-copy Reader,
// blocking like Next.
func (t *tlsConnection) Slice(n int) (r Reader, err error) {
	if err = t.lockReader(); err != nil {
		return nil, err
	}
	defer t.unlockReader()
	if err = t.waitRead(n); err != nil {
		return nil, err
	}
	return t.plain.Slice(n)
}

// Until returns the plaintext up to and including the first delim,
// blocking until delim arrives; on an error it consumes nothing.
func (t *tlsConnection) Until(delim byte) (line []byte, err error) {
	if err = t.lockReader(); err != nil {
		return nil, err
	}
	defer t.unlockReader()
	scanned := 0
	for {
		if i := t.plain.indexByte(delim, scanned); i >= 0 {
			return t.plain.Next(i + 1)
		}
		scanned = t.plain.Len()
		if err = t.waitRead(scanned + 1); err != nil {
			return nil, err
		}
	}
}

// Release frees the plaintext read so far; slices from Next, Peek and
// Until become invalid.
func (t *tlsConnection) Release() (err error) {
	if err = t.lockReader(); err != nil {
		return err
	}
	defer t.unlockReader()
	return t.plain.Release()
}

// Len returns the bytes of plaintext decrypted and not yet read.
func (t *tlsConnection) Len() (length int) { return t.plain.Len() }

// Read reads plaintext into p, as net.Conn requires: it blocks until some
// is decrypted, returns a bare io.EOF after the peer's close_notify (or
// FIN) once all was read, and honours the read deadline and timeout.
// Concurrent calls are served one at a time.
func (t *tlsConnection) Read(p []byte) (n int, err error) {
	raw := t.raw
	if err = raw.acquireSerial(t.readLock, &raw.readDeadline, raw.readTimeout.Load(), ErrReadTimeout); err != nil {
		return 0, t.readError(err)
	}
	defer func() { <-t.readLock }()
	if err = t.lockReader(); err != nil {
		return 0, t.readError(err)
	}
	defer t.unlockReader()
	if raw.closing.Load() && t.plain.Len() == 0 {
		return 0, t.readError(t.closedReadError())
	}
	if raw.readDeadline.exceeded() {
		return 0, t.readError(Exception(ErrReadTimeout, ""))
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err = t.waitRead(1); err != nil {
		return 0, t.readError(err)
	}
	n = min(len(p), t.plain.Len())
	t.plain.consume(n)
	t.plain.readInto(p[:n])
	return n, t.plain.Release()
}

// readError shapes a Read error as net.Conn callers expect.
func (t *tlsConnection) readError(err error) error {
	if errors.Is(err, ErrEOF) {
		return io.EOF
	}
	return t.raw.opError("read", err)
}
