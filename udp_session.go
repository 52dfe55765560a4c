package netpoll

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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

// udpSession is the Connection of one peer of a UDP listener: a connection
// whose layer is the session. The Reader, Writer and net.Conn methods are
// the connection's own front end; the layer hooks at the end of this file
// keep datagram boundaries.
type udpSession struct {
	*connection
	sock *udpSocket
	peer netip.AddrPort

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
	c := sess.connection
	c.init(s.fd, l.network, sess)
	c.layer = sess
	c.life.Store(lifeKeepFD) // the fd is the listener's
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
		// A session has no keepalive: both options mean its idle close.
		if srv.opts.idleTimeout > 0 {
			idle = srv.opts.idleTimeout
		}
		if srv.opts.idleClose > 0 {
			idle = srv.opts.idleClose
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
	if c.idleClose.Load() == 0 {
		_ = c.setIdleClose(idle)
	}
	return sess
}

// SetIdleTimeout closes the session after timeout without a datagram either
// way: a UDP session has no keepalive, and nothing else tells it that its
// peer went away. Zero or less turns the idle close off.
func (sess *udpSession) SetIdleTimeout(timeout time.Duration) error {
	return sess.setIdleClose(timeout)
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
		c.onRequest.Store(&srv.onRequest)
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
	defer c.releaseOnPoller()
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
	if hook := testHookUDPQueueing.Load(); hook != nil {
		(*hook)(sess)
	}
	d := bufpool.Get(len(p))[:len(p)]
	copy(d, p)
	sess.queue = append(sess.queue, d)
	sess.queuedBytes += len(d)
	sess.queued.Add(1)
	// The reader empties the window without mu, then looks at queued
	// (advance). If it emptied the window after the look above but looked
	// at queued before the Add, nobody would move d in: the reader would
	// wait for it until its deadline. Looking at the window again after the
	// Add closes the gap: one of the two sides sees the other's store.
	if c.inputBuffer.Len() == 0 {
		length, head := sess.shiftLocked()
		sess.mu.Unlock()
		bufpool.Put(head)
		c.onInput(length)
		return
	}
	sess.mu.Unlock()
	c.touch()
	if c.onRequest.Load() != nil {
		c.kickHandler()
	}
}

// testHookUDPQueueing, when set, runs in receive between its look at the
// window and the queueing of the datagram, so a test can put a reader there.
var testHookUDPQueueing atomic.Pointer[func(*udpSession)]

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
	length, d := sess.shiftLocked()
	sess.mu.Unlock()
	bufpool.Put(d)
	c.onInput(length)
}

// shiftLocked moves the first queued datagram into the empty window and
// returns the readable length and the datagram's memory, for the caller to
// put back in the pool once mu is released. Called with mu held and the
// queue not empty.
func (sess *udpSession) shiftLocked() (length int, d []byte) {
	d = sess.queue[0]
	sess.queue[0] = nil
	sess.queue = sess.queue[1:]
	if len(sess.queue) == 0 {
		sess.queue = sess.queue[:0:0] // let the emptied array go
	}
	sess.queuedBytes -= len(d)
	sess.queued.Add(-1)
	return sess.fillLocked(d), d
}

// The layer hooks: the front end reads the window and asks for the next
// datagram once the window is consumed; Flush and Write send datagrams.

// buffered returns the unread bytes of the current datagram, moving the
// next one in if the window is empty.
func (sess *udpSession) buffered() int {
	sess.advance()
	return sess.inputBuffer.Len()
}

// refill moves the next datagram into an empty window.
func (sess *udpSession) refill() error {
	sess.advance()
	return nil
}

// released moves the next datagram in once the current one is consumed.
func (sess *udpSession) released() { sess.advance() }

// await waits for n bytes in the window: a read never spans two datagrams,
// so one that asks for more than the rest of the current datagram waits
// for the read timeout.
func (sess *udpSession) await(n int, deadline <-chan struct{}, timer <-chan time.Time) error {
	return sess.waitInput(n, deadline, timer)
}

// ended reports false: nothing tells a session its peer went away.
func (sess *udpSession) ended() bool { return false }

// endError is the error of a read on a closed session.
func (sess *udpSession) endError() error { return Exception(ErrConnClosed, "") }

// send sends the flushed output as one datagram and releases it, sent or
// not: a datagram is never sent in part. Flush blocks only while the
// socket's send buffer is full, until the write timeout or deadline
// (ErrWriteTimeout) or the session's close (ErrConnClosed). A datagram too
// large for UDP fails with EMSGSIZE and is dropped. The caller holds the
// write side.
func (sess *udpSession) send() error {
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

// write sends p as one datagram, for the net.Conn Write (after any output
// written through the Writer, sent as its own datagram).
func (sess *udpSession) write(p []byte) (int, error) {
	c := sess.connection
	scratch := writeScratchPool.Get().(*writeScratch)
	scratch.slices[0] = p
	n, err := sess.sock.sendTo(scratch.slices[:1], sess.peer, scratch.iovs[:], c)
	scratch.slices[0] = nil
	writeScratchPool.Put(scratch)
	c.countWrite(n, err)
	if err != nil {
		return 0, err
	}
	c.touch()
	return n, nil
}
