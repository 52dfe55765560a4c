package netpoll

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/bufpool"
	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// The sockets of a UDPListener: the poller's receive path (a batch per
// readiness event, each datagram handed to a session or the ReadFrom queue)
// and the send path shared by sessions and WriteTo.

// udpSocket is one socket of a UDPListener, polled by one poller.
type udpSocket struct {
	l      *UDPListener
	fd     int
	family int

	// refs counts the owners of fd: the listener until Close, each open
	// session, and each system call in flight. The last release closes fd,
	// so a session can still reply while Shutdown waits for it.
	refs atomic.Int64

	loop  *poller.Poller     // set before polling starts, then read-only
	batch *sys.DatagramBatch // owned by the poller goroutine

	received atomic.Uint64 // datagrams received, for tests and Stats

	mu         sync.Mutex
	op         *poller.FDOperator             // guarded by mu; set when polling starts, nil again once Close freed it
	sessions   map[netip.AddrPort]*udpSession // guarded by mu
	writeReady chan struct{}                  // guarded by mu; closed when fd drains, nil when none waits
}

// acquire keeps fd open until release, unless it is already closed.
func (s *udpSocket) acquire() bool {
	for {
		v := s.refs.Load()
		if v == 0 {
			return false
		}
		if s.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes fd.
func (s *udpSocket) release() {
	if s.refs.Add(-1) == 0 {
		_ = sys.Close(s.fd)
	}
}

// acquireSession takes a place for a new session under the listener's
// session limit, and a reference to fd for it; releaseSession gives both
// back when the session closes. Past the limit the new peer's datagram is
// dropped, counted and logged (#15, defect 6): with spoofed sources a
// flood would otherwise cost a session per address until its idle timeout.
// The place is taken with a compare-and-swap, so sockets on different
// pollers never admit more than the limit together.
func (s *udpSocket) acquireSession() bool {
	l := s.l
	for limit := int64(l.maxSessions); ; {
		n := l.sessions.Load()
		if limit > 0 && n >= limit {
			detachedCounters.sessionsRefused.Add(1)
			sessionLimitLog.log(slog.LevelWarn, "netpoll: UDP session limit reached, datagram of a new peer dropped",
				slog.String("listener", l.localAddr.String()), slog.Int64("limit", limit),
				slog.Uint64("refused_total", detachedCounters.sessionsRefused.Load()))
			return false
		}
		if l.sessions.CompareAndSwap(n, n+1) {
			break
		}
	}
	if !s.acquire() {
		l.sessions.Add(-1)
		return false
	}
	return true
}

// releaseSession gives back what acquireSession took.
func (s *udpSocket) releaseSession() {
	s.l.sessions.Add(-1)
	s.release()
}

// onReadable receives the datagrams waiting on the socket and hands each on.
// Called on the poller goroutine; must not block.
func (s *udpSocket) onReadable(_ poller.Poll) error {
	if !s.acquire() {
		return nil
	}
	defer s.release()
	for range udpReadRounds {
		n, err := s.batch.Recv(s.fd, s.l.batch)
		if err != nil {
			// EAGAIN: drained. Anything else (ICMP errors are not reported on
			// an unconnected socket) leaves the socket to the next event.
			return nil
		}
		s.received.Add(uint64(n))
		for i := range n {
			from := s.batch.From(i)
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			s.deliver(from, s.batch.Buf(i), s.batch.Size(i))
		}
		if n < s.l.batch {
			return nil
		}
	}
	return nil
}

// deliver hands one datagram to the listener's consumer.
// Called on the poller goroutine.
func (s *udpSocket) deliver(from netip.AddrPort, p []byte, size int) {
	l := s.l
	if size > len(p) {
		n := l.truncated.Add(1)
		truncatedLog.log(slog.LevelWarn, "netpoll: datagram larger than the maximum size",
			slog.String("from", from.String()), slog.Int("size", size), slog.Int("max", l.maxDatagram),
			slog.Uint64("truncated_total", n))
		if l.mode.Load() == udpModeSessions {
			return
		}
	}
	if l.mode.Load() == udpModePackets {
		buf := bufpool.Get(len(p))[:len(p)]
		copy(buf, p)
		select {
		case l.packets <- udpPacket{buf: buf, size: size, from: from}:
		default:
			bufpool.Put(buf)
			l.dropped.Add(1)
		}
		return
	}
	s.mu.Lock()
	sess := s.sessions[from]
	s.mu.Unlock()
	if sess == nil || sess.closingStarted() {
		if sess = s.openSession(from); sess == nil {
			l.dropped.Add(1)
			return
		}
		defer sess.start()
	}
	sess.receive(p)
}

// sendTo sends payload as one datagram to to, waiting while the socket's
// send buffer is full until the connection c's write timeout or deadline, or
// its close (c nil: the listener's write deadline).
func (s *udpSocket) sendTo(payload [][]byte, to netip.AddrPort, iovs []sys.Iovec, c *connection) (int, error) {
	switch addr := to.Addr(); {
	case s.family == syscall.AF_INET6 && addr.Is4():
		to = netip.AddrPortFrom(netip.AddrFrom16(addr.As16()), to.Port())
	case s.family == syscall.AF_INET && addr.Is4In6():
		to = netip.AddrPortFrom(addr.Unmap(), to.Port())
	}
	for {
		if !s.acquire() {
			return 0, Exception(ErrConnClosed, "send")
		}
		n, err := sys.SendTo(s.fd, payload, to, iovs)
		s.release()
		if err != syscall.EAGAIN {
			return n, err
		}
		if err = s.waitWritable(c); err != nil {
			return 0, err
		}
	}
}

// waitWritable blocks until the poller sees the socket drain, the deadline
// or timeout passes, or the session (or listener) closes.
func (s *udpSocket) waitWritable(c *connection) error {
	s.mu.Lock()
	if s.writeReady == nil {
		if s.op == nil || s.op.Control(poller.PollR2RW) != nil {
			s.mu.Unlock()
			return Exception(ErrConnClosed, "send")
		}
		s.writeReady = make(chan struct{})
	}
	ready := s.writeReady
	s.mu.Unlock()
	var closed <-chan struct{}
	var deadlineC <-chan struct{}
	var timer <-chan time.Time
	if c != nil {
		closed = c.closed.get(0)
		if timeout := c.writeTimeout.Load(); timeout > 0 {
			t := time.NewTimer(time.Duration(timeout))
			defer t.Stop()
			timer = t.C
		}
		deadlineC = c.writeDeadline.wait() // always: a deadline set later must wake this wait
	} else {
		closed = s.l.closed
		deadlineC = s.l.writeDeadline.wait() // always: a deadline set later must wake this wait
	}
	select {
	case <-ready:
		return nil
	case <-closed:
		return Exception(ErrConnClosed, "send")
	case <-deadlineC:
	case <-timer:
	}
	return Exception(ErrWriteTimeout, "")
}

// onWritable wakes every sender waiting for the socket to drain.
// Called on the poller goroutine; must not block.
func (s *udpSocket) onWritable(_ poller.Poll) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.op == nil { // Close took it while this event was on its way
		return nil
	}
	_ = s.op.Control(poller.PollRW2R)
	if s.writeReady != nil {
		close(s.writeReady)
		s.writeReady = nil
	}
	return nil
}
