package netpoll

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// server is the EventLoop: an accept callback on a poller, and the set of
// connections it accepted.
type server struct {
	onRequest OnRequest
	opts      *options

	// acceptMu is held by onAcceptable while it uses the listener's fd, and
	// by whoever closes the listener, so the fd is never closed (and its
	// number reused) under an accept. Lock order: acceptMu before mu.
	acceptMu       sync.Mutex
	listenFD       int  // set by Serve before the first accept
	listenerClosed bool // guarded by acceptMu

	// wrapConn is set by Serve before the first accept when the listener
	// puts a protocol layer in front of each connection (TLS, #8).
	wrapConn func(c *connection, onConnect OnConnect) OnConnect

	mu       sync.Mutex
	conns    []*connection      // guarded by mu; each knows its index (trackIndex)
	listener Listener           // guarded by mu
	acceptOp *poller.FDOperator // guarded by mu
	backoff  *time.Timer        // guarded by mu; resumes accepting after EMFILE
	stopping bool               // guarded by mu

	done     chan error   // Serve returns what arrives here
	active   atomic.Int64 // connections open
	rejected atomic.Int64 // connections refused by WithMaxConnections
	sweeps   atomic.Int64 // passes Shutdown made over the connections (tests read it)

	// Owned by the poller goroutine of acceptOp.
	acceptPause time.Duration
}

var (
	acceptErrorLog = newLogLimiter(time.Second)
	rejectLog      = newLogLimiter(time.Second)
)

// Accept-error backoff after EMFILE or ENFILE: each failure doubles the pause.
const (
	minAcceptPause = 5 * time.Millisecond
	maxAcceptPause = time.Second
	acceptBatch    = 128 // accepts per readiness event, so other fds get their turn
)

func newServer(onRequest OnRequest, opts *options) *server {
	return &server{
		onRequest: onRequest,
		opts:      opts,
		done:      make(chan error, 1),
	}
}

// Serve accepts and serves connections from ln until Shutdown or a fatal
// listener error.
func (s *server) Serve(ln net.Listener) error {
	if u, ok := ln.(*UDPListener); ok {
		// Nothing to accept: the listener's pollers open per-peer sessions (#8).
		return s.serveUDP(u)
	}
	l, err := ConvertListener(ln)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.stopping || s.listener != nil {
		s.mu.Unlock()
		return errors.New("netpoll: EventLoop already serving or shut down")
	}
	op := pollers.Pick().Alloc()
	op.FD = l.Fd()
	op.OnRead = s.onAcceptable
	s.listener, s.acceptOp, s.listenFD = l, op, l.Fd()
	if w, ok := l.(connWrapper); ok {
		s.wrapConn = w.wrapConnection
	}
	if err = op.Control(poller.PollReadable); err != nil {
		s.listener, s.acceptOp = nil, nil
		s.mu.Unlock()
		op.Free()
		return err
	}
	s.mu.Unlock()
	return <-s.done
}

// onAcceptable accepts the connections waiting on the listener.
// Called on the poller goroutine; must not block.
func (s *server) onAcceptable(_ poller.Poll) error {
	s.acceptMu.Lock()
	defer s.acceptMu.Unlock()
	if s.listenerClosed {
		return nil
	}
	for range acceptBatch {
		fd, peer, err := sys.Accept(s.listenFD)
		if err != nil {
			s.onAcceptError(err)
			return nil
		}
		s.acceptPause = 0
		s.serveConn(fd, &peer)
	}
	return nil
}

// onAcceptError decides what an accept failure means. Running out of fds
// pauses accepting with a growing backoff instead of spinning on a backlog
// that stays readable; a vanished listener ends Serve.
func (s *server) onAcceptError(err error) {
	switch {
	case err == syscall.EAGAIN:
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		detachedCounters.acceptErrors.Add(1)
		s.acceptPause = min(max(s.acceptPause*2, minAcceptPause), maxAcceptPause)
		acceptErrorLog.log(slog.LevelWarn, "netpoll: accept paused", slog.Any("error", err), slog.Duration("pause", s.acceptPause))
		s.pauseAccepting(s.acceptPause)
	case errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EPROTO):
		// The peer gave up while queued; the next accept may succeed.
	default:
		s.fail(err)
	}
}

func (s *server) pauseAccepting(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	_ = s.acceptOp.Control(poller.PollPauseRead)
	resume := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.stopping {
			_ = s.acceptOp.Control(poller.PollResumeRead)
		}
	}
	if s.backoff == nil {
		s.backoff = time.AfterFunc(d, resume)
	} else {
		s.backoff.Reset(d)
	}
}

// fail ends Serve with err, once. Called from onAcceptable, with acceptMu held.
func (s *server) fail(err error) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.stopAcceptingLocked()
	s.mu.Unlock()
	s.closeListenerLocked()
	s.done <- err
}

// connWrapper is a listener that puts a protocol layer in front of each
// connection the server accepts (the TLS listener, #8). wrapConnection runs
// before OnPrepare: it makes the layer's Connection c.owner, takes over
// c's OnRequest and OnDisconnect, and returns the OnConnect the server
// should run, which may wrap the user's onConnect (nil when none is set).
type connWrapper interface {
	wrapConnection(c *connection, onConnect OnConnect) OnConnect
}

// serveConn sets up an accepted connection: OnPrepare, then polling, then
// OnConnect on the runner.
// Called on the poller goroutine.
func (s *server) serveConn(fd int, peer *sys.Peer) {
	if limit := s.opts.maxConnections; limit > 0 && s.active.Load() >= int64(limit) {
		_ = sys.Close(fd)
		detachedCounters.refused.Add(1)
		n := s.rejected.Add(1)
		rejectLog.log(slog.LevelWarn, "netpoll: connection limit reached, connection refused",
			slog.Int("limit", limit), slog.Int64("refused_total", n))
		return
	}
	// An IPv4 peer is packed into the connection; only others get a net.Addr.
	var remote net.Addr
	network := "tcp"
	ip4, port, isIPv4 := peer.IPv4()
	if !isIPv4 {
		if remote = peer.Addr(s.listener.Addr().Network()); remote != nil {
			network = remote.Network()
		}
	}
	if network == "tcp" {
		_ = sys.SetNoDelay(fd, true)
	}
	c := &connection{}
	c.init(fd, network, nil)
	c.owner = c
	c.server = s
	if isIPv4 {
		c.peer4 = packIPv4(ip4, port)
	} else {
		c.setRemoteAddr(remote)
	}
	c.setMaxInput(s.opts.maxInputBuffer)
	c.readTimeout.Store(int64(s.opts.readTimeout))
	c.writeTimeout.Store(int64(s.opts.writeTimeout))
	// The callbacks are stored as pointers to the server's own copies, which
	// never change, so an idle connection holds no pointer cells of its own.
	if s.onRequest != nil {
		c.onRequest.Store(&s.onRequest)
	}
	if s.opts.onDisconnect != nil {
		c.onDisconnect.Store(&s.opts.onDisconnect)
	}
	onConnect := s.opts.onConnect
	if s.wrapConn != nil {
		onConnect = s.wrapConn(c, onConnect)
	}
	if !s.track(c) {
		_ = sys.Close(fd)
		return
	}
	if s.opts.idleTimeout > 0 && network != "unix" {
		// TCP keepalive, as the reference's WithIdleTimeout: before
		// OnPrepare, which may change it.
		_ = c.SetIdleTimeout(s.opts.idleTimeout)
	}
	if op := s.opts.onPrepare; op != nil && !s.prepare(c, op) {
		return
	}
	if onConnect != nil {
		if s.wrapConn == nil {
			c.onConnect.Store(&s.opts.onConnect)
		} else {
			c.onConnect.Store(&onConnect)
		}
		c.connectPending.Store(true)
		// Hold the handler until registration is done, so OnConnect runs first.
		c.pending.Store(1)
	}
	var key uint64
	if pollers.BySource() {
		key = c.sourceHash()
	}
	p := pollers.PickFor(key)
	if err := c.register(p, false); err != nil {
		c.close()
		return
	}
	c.stats.accepted.Add(1)
	if c.idleClose.Load() == 0 && s.opts.idleClose > 0 {
		_ = c.setIdleClose(s.opts.idleClose)
	}
	if c.connectPending.Load() {
		runHandler(c)
	}
}

// prepare runs OnPrepare on the poller goroutine, holding c meanwhile. A
// panic costs the connection only: runCallback logs it and closes c, and
// the close waits for the release, which hands the close callbacks to the
// runner instead of running them on the poller.
func (s *server) prepare(c *connection, onPrepare OnPrepare) bool {
	c.hold()
	defer c.releaseOnPoller()
	return c.runCallback("OnPrepare", func() {
		// c.owner: the user sees the wrapping layer's connection, if any.
		if ctx := onPrepare(c.owner); ctx != nil {
			c.ctx.Store(&ctx)
		}
	})
}

// track adds c to the server's set, unless the server is stopping.
func (s *server) track(c *connection) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	c.trackIndex = int32(len(s.conns))
	s.conns = append(s.conns, c)
	s.active.Add(1)
	return true
}

// forget removes a closed connection from the server's set.
func (s *server) forget(c *connection) {
	s.mu.Lock()
	if i := int(c.trackIndex); i < len(s.conns) && s.conns[i] == c {
		last := s.conns[len(s.conns)-1]
		s.conns[i] = last
		last.trackIndex = int32(i)
		s.conns[len(s.conns)-1] = nil
		s.conns = s.conns[:len(s.conns)-1]
		s.active.Add(-1)
	}
	s.mu.Unlock()
}

// stopAcceptingLocked detaches the listener from its poller; the caller then
// closes it with closeListener, outside mu.
func (s *server) stopAcceptingLocked() {
	s.stopping = true
	if s.backoff != nil {
		s.backoff.Stop()
	}
	if s.acceptOp != nil {
		_ = s.acceptOp.Control(poller.PollDetach)
		s.acceptOp.Free()
		s.acceptOp = nil
	}
}

// closeListener closes the listener once no accept is using its fd.
func (s *server) closeListener() {
	s.acceptMu.Lock()
	defer s.acceptMu.Unlock()
	s.closeListenerLocked()
}

func (s *server) closeListenerLocked() {
	if s.listenerClosed || s.listener == nil {
		return
	}
	s.listenerClosed = true
	_ = s.listener.Close()
}

// Shutdown stops accepting, closes idle connections and waits for busy ones
// to finish their request, until ctx ends. It sweeps the connections again
// after 50 ms to 1 s (shutdownSweepWait), closing those it finds idle.
func (s *server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping {
		s.stopAcceptingLocked()
		select {
		case s.done <- nil:
		default:
		}
	}
	s.mu.Unlock()
	s.closeListener()
	for {
		busy := s.closeIdle()
		if busy == 0 {
			return nil
		}
		wait := time.NewTimer(shutdownSweepWait(busy))
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		}
	}
}

// Between two sweeps over the connections, Shutdown waits one millisecond
// per busy connection, at least minSweepWait and at most maxSweepWait: the
// timing of cloudwego/netpoll's server Close, which Kitex's and Hertz's
// graceful stop were tuned against. A sweep closes every connection it finds
// idle, so a connection that has just sent a response and whose client is
// about to send the next request is cut if a sweep falls in that gap; fewer
// sweeps give it the reference's chance to stay busy until it drains. With
// a 10 ms period, callers that kept sending saw 7–14 cut connections per
// Kitex graceful stop against 0–4 on the reference (issue #16).
const (
	minSweepWait = 50 * time.Millisecond
	maxSweepWait = time.Second
)

// shutdownSweepWait is how long Shutdown waits before sweeping again when
// busy connections remain.
func shutdownSweepWait(busy int) time.Duration {
	return min(max(time.Duration(busy)*time.Millisecond, minSweepWait), maxSweepWait)
}

// closeIdle closes every connection that is not handling input and reports
// how many remain busy. A connection is claimed by moving pending from 0, so
// the poller cannot start its handler after the check.
func (s *server) closeIdle() int {
	s.sweeps.Add(1)
	s.mu.Lock()
	conns := append([]*connection(nil), s.conns...)
	s.mu.Unlock()
	busy := 0
	for _, c := range conns {
		if c.pending.CompareAndSwap(0, 1) {
			c.close()
			continue
		}
		busy++
	}
	return busy
}
