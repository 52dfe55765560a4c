package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tlsConnection is the Connection of a TLS session: a raw connection of
// this library underneath, polled as usual, and crypto/tls between the two.
//
//	poller ──reads──▶ raw input ──whole records──▶ tls.Conn ──pull──▶ plain ──▶ Reader, OnRequest
//	Writer ──▶ out ──Flush──▶ tls.Conn.Write ──records──▶ raw.Write ──▶ socket
//
// The handshake runs on one goroutine, blocking, bounded by the handshake
// timeout: crypto/tls cannot suspend a handshake half way, and a client's
// flight can span several records. On a server that goroutine is the runner
// task that would run OnConnect, started at accept; the user's OnConnect
// runs after the handshake on it. Pollers never call into crypto/tls.
//
// After the handshake, pull decrypts: it calls tls.Conn.Read, whose
// transport hands over complete records only and otherwise says "would
// block", so pull never waits. It runs on whoever holds the plaintext read
// side: the handler when input arrives, or a reader that needs more bytes.
type tlsConnection struct {
	// Set before the connection is published, then read-only.
	raw              *connection
	conn             *tls.Conn
	transport        tlsTransport
	isServer         bool
	handshakeTimeout time.Duration
	onConnect        OnConnect    // the user's, run after the handshake
	onDisconnect     OnDisconnect // the user's
	inputFunc        OnRequest    // t.onRawInput, made once: raw's OnRequest

	handshakeOnce  sync.Once
	handshakeErr   error        // written inside handshakeOnce
	handshakeState atomic.Int32 // handshakePending, then done or timed out

	// Read side: plain is written by pull and read by the Reader methods,
	// all by the goroutine holding readerState.
	plain       *LinkBuffer
	readerState atomic.Int32 // sideFree, sideBusy or sideClosed
	readLock    chan struct{}
	readTimer   *time.Timer
	readErr     error       // sticky: io.EOF after close_notify, or the record error
	eof         atomic.Bool // no more plaintext will come

	// Write side, owned by the goroutine holding writerState.
	out         *LinkBuffer
	writerState atomic.Int32
	writeLock   chan struct{}
	slices      [][]byte
	scratch     []byte

	onRequest    atomic.Pointer[OnRequest]
	stalled      int         // owned by the handler: plain's length when OnRequest last consumed nothing; -1 none
	disconnected atomic.Bool // OnDisconnect ran
	released     atomic.Bool // the raw connection closed: the last user of a buffer frees it
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

// newTLSConnection puts a TLS session over raw and makes it raw's owner, so
// callbacks receive it.
func newTLSConnection(raw *connection, isServer bool, config *tls.Config, handshakeTimeout time.Duration) *tlsConnection {
	t := &tlsConnection{
		raw:              raw,
		isServer:         isServer,
		handshakeTimeout: handshakeTimeout,
		plain:            NewLinkBuffer(),
		out:              NewLinkBuffer(),
		readLock:         make(chan struct{}, 1),
		writeLock:        make(chan struct{}, 1),
		slices:           make([][]byte, maxFlushSlices),
		stalled:          -1,
	}
	t.transport.raw = raw
	if isServer {
		t.conn = tls.Server(&t.transport, config)
	} else {
		t.conn = tls.Client(&t.transport, config)
	}
	t.inputFunc = t.onRawInput
	raw.owner = t
	raw.mu.Lock()
	// Registered first, so it runs after the user's close callbacks.
	cold := raw.coldLocked()
	cold.closeCallbacks = append(cold.closeCallbacks, t.onRawClosed)
	raw.mu.Unlock()
	return t
}

// handshake runs the TLS handshake once; concurrent callers wait for it. A
// failure closes the connection.
func (t *tlsConnection) handshake() error {
	t.handshakeOnce.Do(t.runHandshake)
	return t.handshakeErr
}

func (t *tlsConnection) runHandshake() {
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
		handshakeLog.log(slog.LevelWarn, "netpoll: tls handshake failed",
			slog.Any("peer", t.raw.RemoteAddr()), slog.Any("error", err))
	}
	t.raw.close()
}

// onHandshakeTimeout closes a connection whose handshake is still running,
// which wakes the handshake goroutine. It runs on a timer goroutine.
func (t *tlsConnection) onHandshakeTimeout() {
	if t.handshakeState.CompareAndSwap(handshakePending, handshakeTimedOut) {
		t.raw.close()
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

// onDisconnectTLS is the OnDisconnect raw runs when the peer's FIN arrives;
// the user's OnDisconnect runs once, whether close_notify or FIN came first.
func (t *tlsConnection) onDisconnectTLS(ctx context.Context, _ Connection) {
	if t.onDisconnect != nil && t.disconnected.CompareAndSwap(false, true) {
		t.onDisconnect(ctx, t)
	}
}

// onRawInput is raw's OnRequest: it decrypts what arrived and calls the
// user's OnRequest on plaintext while unread plaintext remains and either
// the last call consumed some or more was decrypted. After close_notify it
// finishes the connection as the raw connection does after FIN.
func (t *tlsConnection) onRawInput(ctx context.Context, _ Connection) error {
	raw := t.raw
	for !raw.closing.Load() {
		// A reader elsewhere holding the read side pulls for itself.
		if t.readerState.CompareAndSwap(sideFree, sideBusy) {
			added, err := t.pull()
			t.unlockReader()
			if err != nil {
				return nil
			}
			if added > 0 {
				t.stalled = -1
			}
		}
		onRequest := t.onRequest.Load()
		before := t.plain.Len()
		if onRequest == nil || before == 0 || before == t.stalled {
			break
		}
		if !raw.runCallback("OnRequest", func() { _ = (*onRequest)(ctx, t) }) {
			return nil
		}
		if after := t.plain.Len(); after >= before {
			t.stalled = after
		} else {
			t.stalled = -1
		}
	}
	if t.eof.Load() && !raw.closing.Load() {
		raw.runCallback("OnDisconnect", func() { t.onDisconnectTLS(ctx, t) })
		_ = t.Close()
	}
	return nil
}

// pull decrypts the complete records in raw input into plain, until none is
// left or plain holds the input limit. It never blocks. A record error
// closes the connection. The caller holds the read side.
func (t *tlsConnection) pull() (added int, err error) {
	if t.readErr != nil {
		if t.eof.Load() {
			return 0, nil
		}
		return 0, t.readErr
	}
	if t.handshakeState.Load() != handshakeDone {
		if err = t.handshake(); err != nil {
			return 0, err
		}
	}
	for t.plain.Len() < int(t.raw.maxInput) {
		// Between records crypto/tls holds no input of its own (the
		// transport hands over whole records, and each is read into a
		// buffer as long as its payload), so with no complete record in
		// raw input there is nothing to decrypt, unless the peer's EOF is
		// to be reported.
		payload, ok := t.transport.completeRecord()
		if !ok {
			if !t.raw.peerClosed.Load() {
				return added, nil
			}
			payload = 1
		}
		buf := bookRecord(t.plain, max(payload, 1))
		if buf == nil {
			return added, t.closedReadError()
		}
		n, rerr := t.conn.Read(buf)
		if _, aerr := t.plain.bookAck(n); aerr != nil {
			return added, aerr
		}
		added += n
		switch {
		case rerr == nil:
		case rerr == errWouldBlock:
			return added, nil
		case errors.Is(rerr, io.EOF):
			// close_notify, or the peer's FIN at a record boundary.
			t.readErr = io.EOF
			t.eof.Store(true)
			return added, nil
		default:
			t.failRead(rerr)
			return added, t.readErr
		}
	}
	return added, nil
}

// failRead records a record-layer failure (a bad MAC, an alert from the
// peer, garbage), counts and logs it, and closes the connection.
func (t *tlsConnection) failRead(err error) {
	t.readErr = &exception{no: ErrConnClosed, suffix: "tls", cause: err}
	tlsCounters.recordErrors.Add(1)
	if t.isServer {
		recordErrorLog.log(slog.LevelWarn, "netpoll: tls record error, connection closed",
			slog.Any("peer", t.raw.RemoteAddr()), slog.Any("error", err))
	}
	t.raw.close()
}

// onRawClosed runs after every other close callback of the raw connection.
func (t *tlsConnection) onRawClosed(Connection) error {
	t.released.Store(true)
	t.freeInput()
	t.freeOutput()
	return nil
}

// freeInput returns plain's memory once nobody reads it, unless plaintext
// that arrived before the peer closed remains to be read.
func (t *tlsConnection) freeInput() {
	if (t.eof.Load() || t.raw.peerClosed.Load()) && t.plain.Len() > 0 {
		return
	}
	if t.readerState.CompareAndSwap(sideFree, sideClosed) {
		_ = t.plain.Close()
	}
}

// freeOutput returns out's memory once nobody writes it.
func (t *tlsConnection) freeOutput() {
	if t.writerState.CompareAndSwap(sideFree, sideClosed) {
		_ = t.out.Close()
	}
}

// ConnectionState returns the TLS session's state: version, cipher suite,
// the peer's certificates. It waits for a handshake in progress.
func (t *tlsConnection) ConnectionState() tls.ConnectionState {
	return t.conn.ConnectionState()
}

// IsActive reports whether the connection is open.
func (t *tlsConnection) IsActive() bool { return t.raw.IsActive() }

// Reader returns the plaintext input side: t itself.
func (t *tlsConnection) Reader() Reader { return t }

// Writer returns the plaintext output side: t itself.
func (t *tlsConnection) Writer() Writer { return t }

// LocalAddr returns the local network address.
func (t *tlsConnection) LocalAddr() net.Addr { return t.raw.LocalAddr() }

// RemoteAddr returns the remote network address.
func (t *tlsConnection) RemoteAddr() net.Addr { return t.raw.RemoteAddr() }

// SetReadTimeout bounds each blocking read; zero or less means no bound.
func (t *tlsConnection) SetReadTimeout(timeout time.Duration) error {
	return t.raw.SetReadTimeout(timeout)
}

// SetWriteTimeout bounds each Flush; zero or less means no bound.
func (t *tlsConnection) SetWriteTimeout(timeout time.Duration) error {
	return t.raw.SetWriteTimeout(timeout)
}

// SetIdleTimeout closes the connection after timeout without traffic.
func (t *tlsConnection) SetIdleTimeout(timeout time.Duration) error {
	return t.raw.SetIdleTimeout(timeout)
}

// SetDeadline sets the read and write deadlines.
func (t *tlsConnection) SetDeadline(when time.Time) error { return t.raw.SetDeadline(when) }

// SetReadDeadline sets the deadline for reads, including ones blocked.
func (t *tlsConnection) SetReadDeadline(when time.Time) error { return t.raw.SetReadDeadline(when) }

// SetWriteDeadline sets the deadline for writes, including ones blocked.
func (t *tlsConnection) SetWriteDeadline(when time.Time) error { return t.raw.SetWriteDeadline(when) }

// SetOnRequest sets the handler called with plaintext input. Input already
// buffered is handled at once.
func (t *tlsConnection) SetOnRequest(onRequest OnRequest) error {
	if onRequest == nil {
		t.onRequest.Store(nil)
		return nil
	}
	t.onRequest.Store(&onRequest)
	t.raw.onRequest.Store(&t.inputFunc)
	if t.raw.inputBuffer.Len() > 0 || t.plain.Len() > 0 {
		t.raw.kickHandler()
	}
	return nil
}

// AddCloseCallback registers callback to run once after the connection is
// closed; it receives this Connection.
func (t *tlsConnection) AddCloseCallback(callback CloseCallback) error {
	return t.raw.AddCloseCallback(callback)
}

// Close sends close_notify (when the handshake completed) and closes the
// connection. Blocked reads and flushes return ErrConnClosed. Closing twice
// returns an error matching net.ErrClosed.
func (t *tlsConnection) Close() error {
	// As on plain connections, only the user's own second Close is an error.
	if t.raw.userClosed.Swap(true) {
		return t.raw.opError("close", Exception(ErrConnClosed, ""))
	}
	if t.raw.closing.Load() {
		return nil
	}
	// tls.Conn.Close bounds the close_notify write by 5 s and, if a Write is
	// in progress, skips it and only closes the transport.
	_ = t.conn.Close()
	return nil
}
