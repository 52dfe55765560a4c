package netpoll

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// A session is the Connection of one UDP peer. It is a connection (the same
// input LinkBuffer, handler protocol, timeouts and idle wheel as TCP) over
// the listener's socket, with three differences:
//
//   - Input keeps datagram boundaries. The input buffer (the window) holds
//     the bytes of at most one datagram; the next ones wait in queue until
//     the reader has consumed the window. The poller fills an empty window
//     directly; otherwise the reader side moves the next datagram in, before
//     a read and after each OnRequest (advance). Both sides do it under mu,
//     so the buffer's writer role passes between them and never overlaps.
//     A read never spans two datagrams: one that asks for more than the rest
//     of the current datagram waits for the read timeout.
//   - Flush (and Write) send what was written as one datagram with sendmsg
//     on the listener's socket; the fd is the listener's, so closing a
//     session never closes it (detached).
//   - Nothing tells a session its peer went away: it ends by Close or by the
//     idle timeout (the EventLoop's, else one minute). An empty datagram only
//     counts as activity.

// udpSession is the Connection of one peer of a UDP listener.
type udpSession struct {
	*connection
	sock *udpSocket
	peer netip.AddrPort

	// handler is the user's OnRequest; connection.onRequest holds
	// serveRequestFunc, which calls it and then advances the window.
	handler          atomic.Pointer[OnRequest]
	serveRequestFunc OnRequest

	// queued is len(queue), so advance skips mu when nothing waits. Atomic;
	// written under mu.
	queued atomic.Int32

	mu          sync.Mutex
	queue       [][]byte // guarded by mu; datagrams from bufpool, oldest first
	queuedBytes int      // guarded by mu
}

// openSession makes the session of a new peer and publishes it in the
// socket's table; the caller delivers the first datagram, then calls start.
// It returns nil if the peer is refused (connection or session limit,
// listener closed, Accept queue full). Called on the poller goroutine.
func (s *udpSocket) openSession(peer netip.AddrPort) *udpSession {
	l, srv := s.l, s.l.server
	if srv != nil {
		if limit := srv.opts.maxConnections; limit > 0 && srv.active.Load() >= int64(limit) {
			detachedCounters.refused.Add(1)
			n := srv.rejected.Add(1)
			rejectLog.log(slog.LevelWarn, "netpoll: connection limit reached, UDP peer refused",
				slog.Int("limit", limit), slog.Int64("refused_total", n))
			return nil
		}
	}
	if !s.acquireSession() {
		return nil
	}
	sess := &udpSession{sock: s, peer: peer, connection: &connection{}}
	sess.serveRequestFunc = sess.serveRequest
	c := sess.connection
	c.init(s.fd, l.network, sess)
	c.detached = true // the fd is the listener's
	c.setRemoteAddr(net.UDPAddrFromAddrPort(peer))
	p := s.loop
	// An operator that is never registered: it ties the session to its
	// poller's idle wheel and counters.
	c.operator = p.Alloc()
	c.stats = countersOf(p)
	c.counted = true
	c.stats.open.Add(1)
	c.stats.accepted.Add(1)
	// Registered first, so it runs after the user's close callbacks.
	_ = c.AddCloseCallback(func(Connection) error { sess.onClosed(); return nil })

	idle := defaultSessionIdle
	if srv != nil {
		if !sess.serveWith(srv) {
			return nil
		}
		if srv.opts.idleTimeout > 0 {
			idle = srv.opts.idleTimeout
		}
	}
	s.mu.Lock()
	s.sessions[peer] = sess
	s.mu.Unlock()
	if srv == nil {
		select {
		case l.accepted <- sess:
		default:
			c.close()
			return nil
		}
	}
	if c.idleTimeout.Load() == 0 {
		_ = c.SetIdleTimeout(idle)
	}
	return sess
}

// serveWith sets the session up as the EventLoop's serveConn sets up an
// accepted connection: options, tracking, OnPrepare, OnConnect held until
// start. It reports false if the session was closed instead.
func (sess *udpSession) serveWith(srv *server) bool {
	c := sess.connection
	c.server = srv
	c.setMaxInput(srv.opts.maxInputBuffer)
	c.readTimeout.Store(int64(srv.opts.readTimeout))
	c.writeTimeout.Store(int64(srv.opts.writeTimeout))
	if srv.onRequest != nil {
		onRequest := srv.onRequest
		sess.handler.Store(&onRequest)
		c.onRequest.Store(&sess.serveRequestFunc)
	}
	if !srv.track(c) {
		c.close()
		return false
	}
	if op := srv.opts.onPrepare; op != nil && !srv.prepare(c, op) {
		return false
	}
	if oc := srv.opts.onConnect; oc != nil {
		c.onConnect.Store(&oc)
		c.connectPending.Store(true)
		c.pending.Store(1) // hold the handler until start: OnConnect runs first
	}
	return true
}

// start runs OnConnect, if one is held, once the first datagram is in.
func (sess *udpSession) start() {
	if c := sess.connection; c.connectPending.Load() {
		runHandler(c)
	}
}

// onClosed forgets the session and lets go of the listener's socket. Runs
// once, from close.
func (sess *udpSession) onClosed() {
	s := sess.sock
	s.mu.Lock()
	if s.sessions[sess.peer] == sess {
		delete(s.sessions, sess.peer)
	}
	s.mu.Unlock()
	sess.mu.Lock()
	queue := sess.queue
	sess.queue, sess.queuedBytes = nil, 0
	sess.queued.Store(0)
	sess.mu.Unlock()
	for _, d := range queue {
		bufpool.Put(d)
	}
	s.releaseSession()
}

// receive takes one datagram from the poller: into the window if it is
// empty, else into the queue. Called on the poller goroutine.
func (sess *udpSession) receive(p []byte) {
	c := sess.connection
	if !c.acquireFD() { // closing: the input buffer may be going away
		return
	}
	defer c.releaseFD()
	c.stats.reads.Add(1)
	c.stats.bytesRead.Add(uint64(len(p)))
	if len(p) == 0 {
		c.touch()
		return
	}
	sess.mu.Lock()
	if len(sess.queue) == 0 && c.inputBuffer.Len() == 0 {
		length := sess.fillLocked(p)
		sess.mu.Unlock()
		c.onInput(length)
		return
	}
	if sess.queuedBytes+len(p) > int(c.maxInput) {
		sess.mu.Unlock()
		sess.sock.l.dropped.Add(1)
		return
	}
	d := bufpool.Get(len(p))[:len(p)]
	copy(d, p)
	sess.queue = append(sess.queue, d)
	sess.queuedBytes += len(d)
	sess.queued.Add(1)
	sess.mu.Unlock()
	c.touch()
	if c.onRequest.Load() != nil {
		c.kickHandler()
	}
}

// fillLocked copies datagram p into the empty window and returns the
// readable length. Called with mu held, by the side that owns the window.
func (sess *udpSession) fillLocked(p []byte) int {
	b := sess.inputBuffer
	buf := b.book(len(p), len(p))
	if len(buf) < len(p) { // the buffer was closed
		return b.Len()
	}
	copy(buf, p)
	length, _ := b.bookAck(len(p))
	return length
}

// advance moves the next queued datagram into the window once the reader
// has consumed it. Called on the reader's side.
func (sess *udpSession) advance() {
	c := sess.connection
	if sess.queued.Load() == 0 || c.inputBuffer.Len() > 0 {
		return
	}
	if !c.acquireFD() {
		return
	}
	defer c.releaseFD()
	sess.mu.Lock()
	if len(sess.queue) == 0 || c.inputBuffer.Len() > 0 {
		sess.mu.Unlock()
		return
	}
	d := sess.queue[0]
	sess.queue[0] = nil
	sess.queue = sess.queue[1:]
	if len(sess.queue) == 0 {
		sess.queue = sess.queue[:0:0] // let the emptied array go
	}
	sess.queuedBytes -= len(d)
	sess.queued.Add(-1)
	length := sess.fillLocked(d)
	sess.mu.Unlock()
	bufpool.Put(d)
	c.onInput(length)
}

// serveRequest is the session's OnRequest: the user's handler, then the next
// datagram into the window. onInput's kick makes serveInput call again.
func (sess *udpSession) serveRequest(ctx context.Context, conn Connection) error {
	var err error
	if h := sess.handler.Load(); h != nil {
		err = (*h)(ctx, conn)
	}
	sess.advance()
	return err
}

// SetOnRequest sets the handler called for each datagram.
func (sess *udpSession) SetOnRequest(onRequest OnRequest) error {
	if onRequest == nil {
		sess.handler.Store(nil)
		return sess.connection.SetOnRequest(nil)
	}
	sess.handler.Store(&onRequest)
	return sess.connection.SetOnRequest(sess.serveRequestFunc)
}

// Reader returns the session's zero-copy input side, which keeps datagram
// boundaries.
func (sess *udpSession) Reader() Reader { return sess }

// Writer returns the session's zero-copy output side: each Flush sends one
// datagram.
func (sess *udpSession) Writer() Writer { return sess }

// RemoteAddr returns the peer's address, a *net.UDPAddr.
func (sess *udpSession) RemoteAddr() net.Addr { return sess.connection.RemoteAddr() }

// The Reader methods first move the next datagram in if the window is empty.

// Next returns the next n bytes of the current datagram; see Reader.Next.
func (sess *udpSession) Next(n int) ([]byte, error) {
	sess.advance()
	return sess.connection.Next(n)
}

// Peek returns the next n bytes of the current datagram without advancing.
func (sess *udpSession) Peek(n int) ([]byte, error) {
	sess.advance()
	return sess.connection.Peek(n)
}

// Skip advances past the next n bytes of the current datagram.
func (sess *udpSession) Skip(n int) error {
	sess.advance()
	return sess.connection.Skip(n)
}

// Until returns the current datagram up to and including delim.
func (sess *udpSession) Until(delim byte) ([]byte, error) {
	sess.advance()
	return sess.connection.Until(delim)
}

// ReadString returns the next n bytes of the current datagram as a string.
func (sess *udpSession) ReadString(n int) (string, error) {
	sess.advance()
	return sess.connection.ReadString(n)
}

// ReadBinary returns a copy of the next n bytes of the current datagram.
func (sess *udpSession) ReadBinary(n int) ([]byte, error) {
	sess.advance()
	return sess.connection.ReadBinary(n)
}

// ReadByte returns the next byte of the current datagram.
func (sess *udpSession) ReadByte() (byte, error) {
	sess.advance()
	return sess.connection.ReadByte()
}

// Slice returns the next n bytes of the current datagram as a Reader.
func (sess *udpSession) Slice(n int) (Reader, error) {
	sess.advance()
	return sess.connection.Slice(n)
}

// Len returns the unread bytes of the current datagram.
func (sess *udpSession) Len() int {
	sess.advance()
	return sess.connection.Len()
}

// Release frees the input read so far, then moves the next datagram in if
// the current one is consumed.
func (sess *udpSession) Release() error {
	err := sess.connection.Release()
	sess.advance()
	return err
}

// Read reads from the current datagram, as net.Conn requires: one call
// never returns bytes of two datagrams, and a datagram larger than p is
// returned by successive calls.
func (sess *udpSession) Read(p []byte) (int, error) {
	sess.advance()
	return sess.connection.Read(p)
}

// Flush sends everything written since the last Flush as one datagram to the
// peer; with nothing written it sends nothing. It blocks only while the
// socket's send buffer is full, until the write timeout or deadline
// (ErrWriteTimeout) or the session's close (ErrConnClosed). A datagram too
// large for UDP fails with EMSGSIZE and is dropped.
func (sess *udpSession) Flush() error {
	c := sess.connection
	if err := c.lockWriter(); err != nil {
		return err
	}
	defer c.unlockWriter()
	if err := c.outputBuffer.Flush(); err != nil {
		return err
	}
	return sess.sendOutput()
}

// sendOutput sends the flushed output as one datagram and releases it, sent
// or not: a datagram is never sent in part. The caller holds the write side.
func (sess *udpSession) sendOutput() error {
	c := sess.connection
	size := c.outputBuffer.Len()
	if size == 0 {
		return nil
	}
	// Scratch borrowed for the call, as connection.writeOutput does: kept per
	// session it would cost every idle session 2.5 KB.
	s := writeScratchPool.Get().(*writeScratch)
	slices := c.outputBuffer.GetBytes(s.slices[:])
	n, err := sess.sock.sendTo(slices, sess.peer, s.iovs[:], c)
	clear(s.slices[:len(slices)])
	writeScratchPool.Put(s)
	c.countWrite(n, err)
	if skipErr := c.outputBuffer.Skip(size); skipErr != nil && err == nil {
		err = skipErr
	}
	if relErr := c.outputBuffer.Release(); relErr != nil && err == nil {
		err = relErr
	}
	if err != nil {
		return Exception(err, "flush")
	}
	c.touch()
	return nil
}

// Write sends p as one datagram (after any output written through the
// Writer, as its own datagram), as net.Conn requires of a datagram
// connection. Concurrent calls are served one at a time.
func (sess *udpSession) Write(p []byte) (int, error) {
	c := sess.connection
	writeLock := c.writeLock.get(1)
	if err := c.acquireSerial(writeLock, &c.writeDeadline, c.writeTimeout.Load(), ErrWriteTimeout); err != nil {
		return 0, c.opError("write", err)
	}
	defer func() { <-writeLock }()
	if err := c.lockWriter(); err != nil {
		return 0, c.opError("write", err)
	}
	defer c.unlockWriter()
	if c.writeDeadline.exceeded() {
		return 0, c.opError("write", Exception(ErrWriteTimeout, ""))
	}
	if c.outputBuffer.MallocLen() > 0 || !c.outputBuffer.IsEmpty() {
		err := c.outputBuffer.Flush()
		if err == nil {
			err = sess.sendOutput()
		}
		if err != nil {
			return 0, c.opError("write", err)
		}
	}
	scratch := writeScratchPool.Get().(*writeScratch)
	scratch.slices[0] = p
	n, err := sess.sock.sendTo(scratch.slices[:1], sess.peer, scratch.iovs[:], c)
	scratch.slices[0] = nil
	writeScratchPool.Put(scratch)
	c.countWrite(n, err)
	if err != nil {
		return 0, c.opError("write", err)
	}
	c.touch()
	return n, nil
}
