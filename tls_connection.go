package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// tlsConnection is the Connection of a TLS session: a connection of this
// library, polled as usual, whose layer is crypto/tls.
//
//	poller ──reads──▶ inBuf ──whole records──▶ tls.Conn ──refill──▶ plain ──▶ Reader, OnRequest
//	Writer ──▶ out ──Flush──▶ tls.Conn.Write ──records──▶ writeAll ──▶ socket
//
// The Reader, Writer and net.Conn methods are the connection's own front
// end, over plain and out; this type adds the layer hooks (refill, send,
// write, ...), the handshake, and Close with close_notify.
//
// The handshake runs on one goroutine, blocking, bounded by the handshake
// timeout: crypto/tls cannot suspend a handshake half way, and a client's
// flight can span several records. On a server that goroutine is the runner
// task that would run OnConnect, started at accept; the user's OnConnect
// runs after the handshake on it. Pollers never call into crypto/tls. The
// handshake holds the connection (hold), so a close frees nothing under it.
//
// After the handshake, refill decrypts: it calls tls.Conn.Read, whose
// transport hands over complete records only and otherwise says "would
// block", so refill never waits. It runs on whoever holds the read side:
// the handler when input arrives, or a reader that needs more bytes.
type tlsConnection struct {
	*connection

	// Set before the connection is published, then read-only.
	conn             *tls.Conn
	transport        tlsTransport
	isServer         bool
	handshakeTimeout time.Duration
	onConnect        OnConnect // the user's, run after the handshake

	handshakeOnce  sync.Once
	handshakeErr   error        // written inside handshakeOnce
	handshakeState atomic.Int32 // handshakePending, then done or timed out

	// The user's buffers: the connection's inputBuffer and outputBuffer.
	plain, out LinkBuffer

	// Owned by the read side.
	readErr error       // sticky: io.EOF after close_notify, or the record error
	eof     atomic.Bool // no more plaintext will come; read by the handler too

	// Owned by the write side.
	slices  [][]byte
	scratch []byte
}

// States of handshakeState.
const (
	handshakePending int32 = iota
	handshakeDone
	handshakeTimedOut
)

var (
	handshakeLog   = newLogLimiter(time.Second)
	recordErrorLog = newLogLimiter(time.Second)
)

// newTLSConnection puts a TLS session over raw, before raw is published:
// raw's front end reads and writes plaintext from then on, and callbacks
// receive the session.
func newTLSConnection(raw *connection, isServer bool, config *tls.Config, handshakeTimeout time.Duration) *tlsConnection {
	t := &tlsConnection{
		connection:       raw,
		isServer:         isServer,
		handshakeTimeout: handshakeTimeout,
		slices:           make([][]byte, maxFlushSlices),
	}
	t.transport.raw = raw
	if isServer {
		t.conn = tls.Server(&t.transport, config)
	} else {
		t.conn = tls.Client(&t.transport, config)
	}
	raw.inputBuffer, raw.outputBuffer = &t.plain, &t.out
	raw.layer = t
	raw.owner = t
	return t
}

// handshake runs the TLS handshake once; concurrent callers wait for it. A
// failure closes the connection.
func (t *tlsConnection) handshake() error {
	if t.handshakeState.Load() == handshakeDone {
		return nil
	}
	t.handshakeOnce.Do(t.runHandshake)
	return t.handshakeErr
}

func (t *tlsConnection) runHandshake() {
	if !t.hold() {
		t.handshakeErr = Exception(ErrConnClosed, "tls handshake")
		return
	}
	defer t.release(false)
	var timer *time.Timer
	if t.handshakeTimeout > 0 {
		timer = time.AfterFunc(t.handshakeTimeout, t.onHandshakeTimeout)
	}
	err := t.conn.Handshake()
	if timer != nil {
		timer.Stop()
	}
	if t.handshakeState.CompareAndSwap(handshakePending, handshakeDone) && err == nil {
		t.transport.nonBlocking.Store(true)
		tlsCounters.handshakes.Add(1)
		return
	}
	timedOut := t.handshakeState.Load() == handshakeTimedOut
	if timedOut {
		err = fmt.Errorf("%w after %v", errHandshakeTimeout, t.handshakeTimeout)
		tlsCounters.handshakeTimeouts.Add(1)
	}
	tlsCounters.handshakeErrors.Add(1)
	t.handshakeErr = &exception{no: ErrConnClosed, suffix: "tls handshake", cause: err}
	if t.isServer {
		// A peer can fail handshakes at will: count, and log at a bounded rate.
		handshakeLog.logContext(*t.ctx.Load(), slog.LevelWarn, "netpoll: tls handshake failed",
			slog.Any("peer", t.RemoteAddr()), slog.Any("error", err))
	}
	t.close()
}

// onHandshakeTimeout closes a connection whose handshake is still running,
// which wakes the handshake goroutine. It runs on a timer goroutine.
func (t *tlsConnection) onHandshakeTimeout() {
	if t.handshakeState.CompareAndSwap(handshakePending, handshakeTimedOut) {
		t.close()
	}
}

// errHandshakeTimeout reports a handshake that ran past its timeout.
var errHandshakeTimeout = errors.New("netpoll: tls handshake timeout")

// onConnectTLS is the OnConnect the server runs for a TLS connection: the
// handshake, then the user's OnConnect.
func (t *tlsConnection) onConnectTLS(ctx context.Context, _ Connection) context.Context {
	if t.handshake() != nil {
		return ctx
	}
	if t.onConnect != nil {
		if next := t.onConnect(ctx, t); next != nil {
			ctx = next
		}
	}
	return ctx
}

// buffered returns the plaintext decrypted and not yet read.
func (t *tlsConnection) buffered() int { return t.plain.Len() }

// refill decrypts the records buffered in raw input into plain, until none
// is left or plain holds the input limit. It never blocks. A record error
// closes the connection. The caller holds the read side.
func (t *tlsConnection) refill() error {
	if t.readErr != nil {
		if t.eof.Load() {
			return nil
		}
		return t.readErr
	}
	if err := t.handshake(); err != nil {
		return err
	}
	// more is set while crypto/tls may hold plaintext of its own: a Read
	// that filled its buffer may have left the rest of a record inside
	// tls.Conn, which also reads on past a record without application
	// data (a TLS 1.3 session ticket) into the next one.
	more := false
	for t.plain.Len() < int(t.maxInput) {
		// Between records crypto/tls holds no input of its own (the
		// transport hands over whole records), so with no complete record
		// buffered there is nothing to decrypt, unless tls.Conn kept some
		// plaintext or the peer's EOF is to be reported.
		size, ok := t.transport.completeRecord()
		switch {
		case ok:
			size = max(size, 1)
		case more:
			size = LinkBufferCap
		case t.peerClosed.Load():
			size = 1
		default:
			return nil
		}
		buf := t.plain.bookExact(size)
		if buf == nil {
			return t.endError()
		}
		n, err := t.conn.Read(buf)
		if _, aerr := t.plain.bookAck(n); aerr != nil {
			return aerr
		}
		more = n == len(buf)
		switch {
		case err == nil:
		case err == errWouldBlock:
			if !more {
				return nil
			}
		case errors.Is(err, io.EOF):
			// close_notify, or the peer's FIN at a record boundary.
			t.readErr = io.EOF
			t.eof.Store(true)
			return nil
		default:
			t.failRead(err)
			return t.readErr
		}
	}
	return nil
}

// failRead records a record-layer failure (a bad MAC, an alert from the
// peer, garbage), counts and logs it, and closes the connection.
func (t *tlsConnection) failRead(err error) {
	t.readErr = &exception{no: ErrConnClosed, suffix: "tls", cause: err}
	tlsCounters.recordErrors.Add(1)
	if t.isServer {
		recordErrorLog.logContext(*t.ctx.Load(), slog.LevelWarn, "netpoll: tls record error, connection closed",
			slog.Any("peer", t.RemoteAddr()), slog.Any("error", err))
	}
	t.close()
}

// released does nothing: raw input is released as records are decrypted.
func (t *tlsConnection) released() {}

// await waits for the raw input that completes the next record; the peer's
// EOF and the close are seen by the next refill.
func (t *tlsConnection) await(_ int, deadline <-chan struct{}, timer <-chan time.Time) error {
	err := t.waitInput(t.transport.want, deadline, timer)
	if errors.Is(err, ErrReadTimeout) {
		return err
	}
	return nil
}

// ended reports whether close_notify or the peer's FIN ended the plaintext.
func (t *tlsConnection) ended() bool { return t.eof.Load() }

// endError is the error of a read that no plaintext can satisfy.
func (t *tlsConnection) endError() error {
	if t.readErr != nil && !t.eof.Load() {
		return t.readErr
	}
	if t.eof.Load() || t.peerClosed.Load() {
		return Exception(ErrEOF, "")
	}
	return Exception(ErrConnClosed, "")
}

// send encrypts the flushed output. Small pieces are gathered into one
// record, so a reply written in parts costs one record and one write. The
// caller holds the write side. After a failed send the session cannot
// write again: a record may have gone out in part.
func (t *tlsConnection) send() error {
	out := &t.out
	if out.IsEmpty() {
		return nil
	}
	if err := t.handshake(); err != nil {
		return err
	}
	for !out.IsEmpty() {
		slices := out.GetBytes(t.slices)
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
		clear(slices)
		if n > 0 {
			if serr := out.Skip(n); serr != nil {
				return serr
			}
			if rerr := out.Release(); rerr != nil {
				return rerr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write encrypts and writes p at once, for the net.Conn Write.
func (t *tlsConnection) write(p []byte) (int, error) {
	if err := t.handshake(); err != nil {
		return 0, err
	}
	return t.conn.Write(p)
}

// ConnectionState returns the TLS session's state: version, cipher suite,
// the peer's certificates. It waits for a handshake in progress.
func (t *tlsConnection) ConnectionState() tls.ConnectionState {
	return t.conn.ConnectionState()
}

// Close sends close_notify (when the handshake completed) and closes the
// connection. Blocked reads and flushes return ErrConnClosed. Closing twice
// returns an error matching net.ErrClosed.
func (t *tlsConnection) Close() error {
	// As on plain connections, only the user's own second Close is an error.
	if t.userClosed.Swap(true) {
		return t.opError("close", Exception(ErrConnClosed, ""))
	}
	if t.closingStarted() {
		return nil
	}
	// tls.Conn.Close bounds the close_notify write by 5 s and, if a Write is
	// in progress, skips it and only closes the transport.
	_ = t.conn.Close()
	return nil
}
