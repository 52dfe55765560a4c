package netpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// Protocol splits a byte stream into messages and frames replies. Give one to
// an EventLoop with [WithProtocol], and OnRequest is called once per complete
// message, however the bytes arrived: a message split over many segments is
// held until its last byte is in, and many messages that arrived in one read
// give one call each, in order.
//
// # Reading
//
// In the event loop, Read is called on the handler goroutine with an
// io.Reader that is also a [Reader] over the connection's unread input. Its
// methods never block: when the input does not hold the bytes asked for they
// return [ErrIncomplete], and Read should return that error (wrapped or not).
// Nothing is consumed until Read returns a message, so a Read that gives up
// half way is simply called again, from the start of the message, when more
// input arrives. Read must consume at least one byte per message. Any other
// error closes the connection and is logged (rate-limited): return one, such
// as [ErrFrameTooLarge], for input that can never become a valid message.
//
// A Read that uses Peek and Next on the Reader, as [LengthPrefixed] and
// [Delimited] do, returns the message without copying: the slice aliases the
// connection's input buffer. A Read that uses plain io.Reader calls copies.
//
// # Handling
//
// OnRequest gets the message from its context with [MessageFrom]. The
// message, and the context's hold on it, are valid until OnRequest returns:
// copy what must outlive the call. With a protocol set, OnRequest must not
// read the connection's Reader itself, which would consume the next messages.
//
// # Replying
//
// [WriteMessage] frames a reply with the connection's protocol and appends it
// to the connection's Writer. The event loop flushes once after it has
// handled every complete message that arrived, so pipelined requests cost
// one write; the input is released after that flush, because a large reply
// may reference the message's memory.
//
// Outside the event loop a Protocol works on any reader and writer: on a
// netpoll [Reader] (a dialed Connection's Reader blocks until the message is
// in) it reads without copying, and on a netpoll [Writer] (a Connection is
// one) Write appends the frame, which the next Flush sends.
type Protocol interface {
	// Read returns the next message from r.
	Read(r io.Reader) (msg []byte, err error)
	// Write writes msg to w as one framed message.
	Write(w io.Writer, msg []byte) error
}

// ErrIncomplete is what the Reader given to [Protocol.Read] returns when the
// input does not yet hold the bytes asked for. It is not a failure: the event
// loop calls Read again when more input arrives.
var ErrIncomplete = errors.New("netpoll: incomplete message")

// ErrFrameTooLarge reports a frame longer than the protocol's maximum, in
// input or in a reply. In input it closes the connection.
var ErrFrameTooLarge = errors.New("netpoll: frame larger than the protocol's maximum")

// errNoProtocol is returned by WriteMessage outside a framed handler.
var errNoProtocol = errors.New("netpoll: WriteMessage needs the context of an OnRequest served with WithProtocol")

// errNoProgress reports a Protocol that returned a message without consuming
// input; calling it again would return the same message forever.
var errNoProgress = errors.New("netpoll: protocol returned a message without consuming input")

// frameErrorLog limits the lines that peers sending bad frames can cause.
var frameErrorLog = newLogLimiter(time.Second)

// MessageFrom returns the message that OnRequest is called for, when the
// EventLoop has a [Protocol]; otherwise nil. ctx is the context OnRequest got,
// or one derived from it. The slice aliases the input buffer: do not modify
// it, and do not use it after OnRequest returns.
func MessageFrom(ctx context.Context) []byte {
	if m, ok := ctx.Value(messageKey{}).(*messageContext); ok {
		return m.msg
	}
	return nil
}

// WriteMessage frames msg with the protocol of the EventLoop that called
// OnRequest with ctx, and appends it to c's Writer. The event loop flushes it
// when OnRequest returns; elsewhere call Flush. It returns an error without
// writing when ctx did not come from a framed OnRequest, or the protocol
// refuses msg (ErrFrameTooLarge). msg may be referenced until the Flush.
func WriteMessage(ctx context.Context, c Connection, msg []byte) error {
	m, ok := ctx.Value(messageKey{}).(*messageContext)
	if !ok {
		return errNoProtocol
	}
	// c itself is passed, not c.Writer(): it is an io.Writer, and on this
	// library's connections it is the zero-copy Writer too.
	return m.protocol.Write(c, msg)
}

// WithProtocol makes the EventLoop call OnRequest once per message that p
// reads, with the message in its context; see [Protocol]. NewEventLoop
// returns an error if p is one of the ready-made protocols built with
// invalid arguments. A handler installed later with SetOnRequest is called
// without framing.
func WithProtocol(p Protocol) Option {
	return Option{func(o *options) { o.protocol = p }}
}

// messageKey is the context key under which a framed OnRequest finds its
// messageContext.
type messageKey struct{}

// messageContext is the context a framed OnRequest gets: the connection's
// context, plus the message being handled. One lives in each connection's
// frameState and is reused for every message, so handing a message over does
// not allocate.
type messageContext struct {
	context.Context
	msg      []byte
	protocol Protocol
}

// Value returns m itself for messageKey, so that MessageFrom works on any
// context derived from m; other keys go to the connection's context.
func (m *messageContext) Value(key any) any {
	if key == (messageKey{}) {
		return m
	}
	return m.Context.Value(key)
}

// validator is implemented by the ready-made protocols, so that NewEventLoop
// can refuse one built with invalid arguments.
type validator interface{ validate() error }

// installProtocol checks o.protocol and arranges for every accepted
// connection to get its own framing handler around onRequest. The handler is
// set from OnPrepare, which runs for each connection before its socket is
// polled, so the per-connection state is allocated once, at accept.
func (o *options) installProtocol(onRequest OnRequest) error {
	if v, ok := o.protocol.(validator); ok {
		if err := v.validate(); err != nil {
			return err
		}
	}
	if onRequest == nil {
		return nil
	}
	protocol, userPrepare := o.protocol, o.onPrepare
	o.onPrepare = func(c Connection) context.Context {
		var ctx context.Context
		if userPrepare != nil {
			ctx = userPrepare(c)
		}
		s := &frameState{onRequest: onRequest}
		s.message.protocol = protocol
		_ = c.SetOnRequest(s.serve)
		return ctx
	}
	return nil
}

// frameState is one connection's framing: the loop that cuts its input into
// messages and calls the user's OnRequest for each.
// Owned by the connection's handler goroutine (OnRequest never runs twice at
// once for one connection).
type frameState struct {
	onRequest OnRequest
	reader    frameReader
	message   messageContext
}

// serve is the connection's OnRequest: it hands each complete message to the
// user's OnRequest, then flushes the replies once, then releases the input.
func (s *frameState) serve(ctx context.Context, c Connection) error {
	// Store only on change: a context the user kept from an earlier call is
	// then never written under a reader.
	if s.message.Context != ctx {
		s.message.Context = ctx
	}
	r := c.Reader()
	s.reader.src = r
	consumed := false
	var err error
	for c.IsActive() {
		s.reader.off = 0
		msg, readErr := s.message.protocol.Read(&s.reader)
		if readErr != nil {
			if !errors.Is(readErr, ErrIncomplete) {
				err = readErr
			} else if atInputLimit(c) {
				// The poller has stopped reading, so the rest of this
				// message can never arrive: fail instead of stalling.
				err = fmt.Errorf("%w: message longer than the input limit", ErrFrameTooLarge)
			} else {
				// The rest may be held back by a poller that paused at
				// the input limit with less than half consumed.
				wantInput(c)
			}
			break
		}
		if s.reader.off == 0 {
			err = errNoProgress
			break
		}
		if err = r.Skip(s.reader.off); err != nil {
			break
		}
		consumed = true
		s.message.msg = msg
		_ = s.onRequest(&s.message, c)
		s.message.msg = nil
	}
	s.reader.src = nil
	if w := c.Writer(); w.MallocLen() > 0 && c.IsActive() {
		if flushErr := w.Flush(); flushErr != nil && err == nil {
			err = flushErr
		}
	}
	if consumed {
		_ = r.Release()
	}
	if err != nil && c.IsActive() {
		logFrameError(ctx, c, err)
		_ = c.Close()
	}
	return err
}

// atInputLimit reports whether c buffers as much unread input as it may
// (WithMaxInputBuffer), so that no more will be read until some is consumed.
func atInputLimit(c Connection) bool {
	sc := connectionOf(c)
	return sc != nil && sc.inputBuffer.Len() >= int(sc.maxInput)
}

// wantInput tells c that its handler needs more input than is buffered.
func wantInput(c Connection) {
	if sc := connectionOf(c); sc != nil {
		sc.wantInput()
	}
}

// connectionOf returns the library's connection behind c, or nil for a
// Connection of the user's own making.
func connectionOf(c Connection) *connection {
	switch c := c.(type) {
	case *connection:
		return c
	case *tlsConnection:
		return c.connection
	case *udpSession:
		return c.connection
	case *TCPConnection:
		return &c.connection
	case *UnixConnection:
		return &c.connection
	}
	return nil
}

// logFrameError records why a framed connection is closed. A peer can cause
// it at will, so it goes through a limiter.
func logFrameError(ctx context.Context, c Connection, err error) {
	args := []any{slog.String("peer", addrString(c.RemoteAddr())), slog.Any("error", err)}
	if fc, ok := c.(interface{ Fd() int }); ok {
		args = append(args, slog.Int("fd", fc.Fd()))
	}
	frameErrorLog.logContext(ctx, slog.LevelInfo, "netpoll: closing connection: bad frame", args...)
}

// addrString formats an address for log lines: a string, not a struct that
// JSON handlers would spell out field by field.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// frameReader is the io.Reader and Reader a Protocol reads from in the event
// loop: the connection's unread input seen through a cursor. Its reads never
// block; they return ErrIncomplete when the input is short. They only move
// the cursor, and the framing loop consumes the bytes (Skip) once Read has
// returned a whole message, so a Read that gives up costs nothing.
type frameReader struct {
	src Reader // the connection's Reader; nil outside serve
	off int    // bytes read through the cursor since the last message
}

// need reports whether n more bytes are buffered past the cursor.
func (r *frameReader) need(n int) error {
	if n < 0 {
		return fmt.Errorf("netpoll: negative read size %d", n)
	}
	if r.src.Len()-r.off < n {
		return ErrIncomplete
	}
	return nil
}

// Peek returns the n bytes after the cursor without moving it. They alias the
// input buffer until the framing loop releases it.
func (r *frameReader) Peek(n int) ([]byte, error) {
	if err := r.need(n); err != nil {
		return nil, err
	}
	p, err := r.src.Peek(r.off + n)
	if err != nil {
		return nil, err
	}
	return p[r.off:], nil
}

// Next returns the n bytes after the cursor and moves past them.
func (r *frameReader) Next(n int) ([]byte, error) {
	p, err := r.Peek(n)
	if err == nil {
		r.off += n
	}
	return p, err
}

// Skip moves the cursor n bytes on.
func (r *frameReader) Skip(n int) error {
	if err := r.need(n); err != nil {
		return err
	}
	r.off += n
	return nil
}

// Until returns the bytes after the cursor up to and including the first
// delim, or ErrIncomplete when delim has not arrived.
func (r *frameReader) Until(delim byte) ([]byte, error) {
	i, err := r.index(delim)
	if err != nil {
		return nil, err
	}
	return r.Next(i + 1)
}

// index finds delim after the cursor without copying when the source is a
// connection or a LinkBuffer.
func (r *frameReader) index(delim byte) (int, error) {
	var i int
	switch src := r.src.(type) {
	case *connection:
		// Hold the read side, as the connection's own Until does, so a
		// concurrent Close cannot free the buffer under the scan.
		if err := src.lockReader(); err != nil {
			return 0, err
		}
		i = src.inputBuffer.indexByte(delim, r.off)
		src.unlockReader()
	case *LinkBuffer:
		i = src.indexByte(delim, r.off)
	default:
		p, err := r.src.Peek(r.src.Len())
		if err != nil {
			return 0, err
		}
		if i = bytes.IndexByte(p[r.off:], delim); i >= 0 {
			return i, nil
		}
		return 0, ErrIncomplete
	}
	if i < 0 {
		return 0, ErrIncomplete
	}
	return i - r.off, nil
}

// ReadString returns a copy of the next n bytes as a string.
func (r *frameReader) ReadString(n int) (string, error) {
	p, err := r.Next(n)
	return string(p), err
}

// ReadBinary returns a copy of the next n bytes.
func (r *frameReader) ReadBinary(n int) ([]byte, error) {
	p, err := r.Next(n)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), p...), nil
}

// ReadByte returns the next byte.
func (r *frameReader) ReadByte() (byte, error) {
	p, err := r.Next(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// Slice is not supported while framing: a Protocol returns its message as a
// slice, which is already zero-copy.
func (r *frameReader) Slice(int) (Reader, error) {
	return nil, Exception(ErrUnsupported, "Slice inside Protocol.Read")
}

// Release does nothing: the framing loop releases the input after the
// replies are flushed.
func (r *frameReader) Release() error { return nil }

// Len returns the bytes buffered after the cursor.
func (r *frameReader) Len() int { return r.src.Len() - r.off }

// Read copies the bytes after the cursor into p, for protocols written
// against io.Reader. With none buffered it returns ErrIncomplete.
func (r *frameReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := min(len(p), r.Len())
	if n == 0 {
		return 0, ErrIncomplete
	}
	b, err := r.Next(n)
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}
