package netpoll

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/bufpool"
	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// UDP (#8). A UDPListener is one UDP socket per poller (several only with
// WithSocketReusePort, which lets the kernel spread datagrams over them by
// the sender's address, so one peer always reaches the same socket). Each
// socket's poller receives datagrams in batches (recvmmsg on Linux) and hands
// each to one of two consumers, chosen by the first call that uses the
// listener:
//
//   - sessions (EventLoop.Serve, or Accept): the datagrams of one peer address
//     form a Connection (udp_session.go) that OnRequest serves as it would a
//     TCP connection, one datagram at a time; a silent session ends after the
//     idle timeout.
//   - packets (ReadFrom and friends): a net.PacketConn, one datagram per read.
//
// A datagram larger than the listener's maximum size is never handed on cut:
// sessions drop it, ReadFrom returns what fits with an error matching
// ErrDatagramTruncated. Either way it is counted (Truncated) and logged, at
// most once a second.

// ErrDatagramTruncated reports a datagram larger than the room for it: the
// listener's maximum datagram size (WithMaxDatagramSize) or the buffer passed
// to ReadFrom. The part that fitted was returned; the rest is lost.
var ErrDatagramTruncated = errors.New("netpoll: datagram truncated")

// errUDPMode reports a UDP listener used both for sessions and for packets.
var errUDPMode = errors.New("netpoll: UDP listener already serves sessions (Serve, Accept) or packets (ReadFrom), not both")

const (
	// defaultMaxDatagram covers the largest UDP payload over IPv4 (65507
	// bytes) and IPv6 without jumbograms (65527).
	defaultMaxDatagram = 65535
	// defaultDatagramBatch is how many datagrams one receive system call
	// takes at most; see WithDatagramBatch.
	defaultDatagramBatch = 16
	// maxBatchArena bounds the receive buffers of one socket: the batch
	// shrinks for large maximum datagram sizes.
	maxBatchArena = 1 << 20
	// udpReadRounds bounds the receive calls per readiness event, so other
	// sockets of the poller get their turn; level-triggered polling reports
	// what is left.
	udpReadRounds = 4
	// packetQueueLen is how many datagrams wait for ReadFrom before new ones
	// are dropped (and counted), as the kernel drops at a full receive buffer.
	packetQueueLen = 1024
	// acceptQueueLen is how many new sessions wait for Accept.
	acceptQueueLen = 128
	// defaultMaxSessions bounds a listener's sessions; see WithMaxSessions.
	defaultMaxSessions = 10000
	// defaultSessionIdle ends a session that has been silent this long when
	// the EventLoop sets no idle timeout: UDP has no close to end it.
	defaultSessionIdle = time.Minute
)

// Modes of a UDPListener; set once by the first call that uses it.
const (
	udpModeNone int32 = iota
	udpModeSessions
	udpModePackets
)

var (
	truncatedLog    = newLogLimiter(time.Second)
	sessionLimitLog = newLogLimiter(time.Second)
)

// WithMaxDatagramSize sets the largest datagram a UDP listener receives
// whole; a larger one is reported (see [ErrDatagramTruncated]), never handed
// on cut. Default 65535, enough for any UDP payload without IPv6 jumbograms.
// A smaller size lets one receive call take more datagrams (see
// [WithDatagramBatch]). Ignored by stream listeners.
func WithMaxDatagramSize(n int) ListenerOption {
	return ListenerOption{func(o *listenerOptions) { o.maxDatagram = n }}
}

// WithDatagramBatch sets how many datagrams a UDP listener's poller receives
// with one system call (recvmmsg on Linux), default 16; 1 turns batching off.
// The receive buffers of one socket are kept under 1 MiB, so a large
// WithMaxDatagramSize lowers the batch. Ignored by stream listeners.
func WithDatagramBatch(n int) ListenerOption {
	return ListenerOption{func(o *listenerOptions) { o.datagramBatch = n }}
}

// WithMaxSessions bounds the sessions a UDP listener holds at once, whether
// an EventLoop serves it or Accept takes them. The default is 10,000. UDP
// has no handshake, so a flood of datagrams with spoofed source addresses
// would otherwise make a session (about 1.2 KiB of heap) per address, each
// kept until its idle timeout (one minute by default). Past the bound, a
// datagram from a new peer is dropped: it is counted (the listener's
// Dropped and Metrics.SessionsRefused) and logged at most once a second;
// peers that have a session are served as before, and a new peer gets one
// once a session ends. A negative n removes the bound; zero means the
// default. The EventLoop's WithMaxConnections, when set, applies as well.
// Ignored by stream listeners and by ReadFrom.
func WithMaxSessions(n int) ListenerOption {
	return ListenerOption{func(o *listenerOptions) { o.maxSessions = n }}
}

// UDPListener is what [CreateListener] returns for "udp", "udp4" and "udp6"
// (also [ListenUDP]). Serve it with an EventLoop, or call Accept, to handle
// each peer as a Connection; or use it as a net.PacketConn (ReadFrom,
// WriteTo), one datagram per call. The first of these calls fixes the mode:
// the other kind then fails. All methods are safe for concurrent use.
type UDPListener struct {
	// Set by ListenUDP, then read-only.
	network     string
	family      int
	localAddr   net.Addr
	maxDatagram int
	batch       int
	maxSessions int // 0: no bound
	sockets     []*udpSocket

	// mode is udpModeNone until the first use picks one; written under
	// startMu after the fields below it, which are then read-only. Atomic.
	mode    atomic.Int32
	startMu sync.Mutex
	// server serves the sessions when Serve picked the mode; nil in Accept
	// and packet mode.
	server   *server
	accepted chan *udpSession // new sessions for Accept

	packets       chan udpPacket // datagrams for ReadFrom
	readDeadline  deadline
	writeDeadline deadline

	closeOnce sync.Once
	closed    chan struct{} // closed by Close

	truncated atomic.Uint64 // datagrams larger than maxDatagram or the reader's buffer
	dropped   atomic.Uint64 // datagrams no queue (or the session limit) had room for
	sessions  atomic.Int64  // sessions open or being opened, across the sockets; see acquireSession
}

// udpPacket is one datagram waiting for ReadFrom; buf comes from bufpool.
type udpPacket struct {
	buf  []byte
	size int // the datagram's real size; more than len(buf) if cut
	from netip.AddrPort
}

// ListenUDP listens on the UDP address addr; network is "udp", "udp4" or
// "udp6". As package net does, "udp" on a wildcard address serves IPv4 and
// IPv6 peers on one socket where the system allows it.
func ListenUDP(network, addr string, opts ...ListenerOption) (*UDPListener, error) {
	var o listenerOptions
	for _, opt := range opts {
		if opt.apply != nil {
			opt.apply(&o)
		}
	}
	return listenUDP(network, addr, &o)
}

// createUDPListener is CreateListener for the UDP networks; on failure the
// Listener is a nil interface, not a nil *UDPListener.
func createUDPListener(network, addr string, o *listenerOptions) (Listener, error) {
	l, err := listenUDP(network, addr, o)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func listenUDP(network, addr string, o *listenerOptions) (*UDPListener, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, net.UnknownNetworkError(network)
	}
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	l := &UDPListener{
		network:     network,
		maxDatagram: o.maxDatagram,
		batch:       o.datagramBatch,
		closed:      make(chan struct{}),
	}
	if l.maxDatagram <= 0 {
		l.maxDatagram = defaultMaxDatagram
	}
	if l.batch <= 0 {
		l.batch = defaultDatagramBatch
	}
	switch {
	case o.maxSessions == 0:
		l.maxSessions = defaultMaxSessions
	case o.maxSessions > 0:
		l.maxSessions = o.maxSessions
	}
	l.batch = max(1, min(l.batch, maxBatchArena/l.maxDatagram))
	count := 1
	if o.reusePort {
		count = pollers.NumLoops()
	}
	for range count {
		s, err := l.openSocket(ua, o.reusePort)
		if err != nil {
			l.closeSockets()
			return nil, &net.OpError{Op: "listen", Net: network, Addr: ua, Err: err}
		}
		l.sockets = append(l.sockets, s)
		if ua.Port == 0 {
			// The others join the port the kernel chose for the first.
			sa, err := sys.Getsockname(s.fd)
			if err != nil {
				l.closeSockets()
				return nil, err
			}
			l.localAddr = sys.SockaddrToAddr(network, sa)
			ua = &net.UDPAddr{IP: ua.IP, Port: l.localAddr.(*net.UDPAddr).Port, Zone: ua.Zone}
		}
	}
	if l.localAddr == nil {
		sa, err := sys.Getsockname(l.sockets[0].fd)
		if err != nil {
			l.closeSockets()
			return nil, err
		}
		l.localAddr = sys.SockaddrToAddr(network, sa)
	}
	l.family = l.sockets[0].family
	return l, nil
}

// openSocket makes one bound, non-blocking socket for ua.
func (l *UDPListener) openSocket(ua *net.UDPAddr, reusePort bool) (*udpSocket, error) {
	family, bindAddr, dualStack := udpFamily(l.network, ua)
	fd, err := sys.Socket(family, syscall.SOCK_DGRAM, 0)
	if err != nil && dualStack {
		// No IPv6 on this host: serve IPv4 only, as net does.
		family, bindAddr = syscall.AF_INET, &net.UDPAddr{IP: net.IPv4zero, Port: ua.Port}
		dualStack = false
		fd, err = sys.Socket(family, syscall.SOCK_DGRAM, 0)
	}
	if err != nil {
		return nil, err
	}
	if family == syscall.AF_INET6 {
		err = sys.SetIPv6Only(fd, !dualStack)
	}
	if err == nil && reusePort {
		err = sys.SetReusePort(fd)
	}
	if err == nil {
		err = sys.Bind(fd, bindAddr)
	}
	if err != nil {
		_ = sys.Close(fd)
		return nil, err
	}
	s := &udpSocket{l: l, fd: fd, family: family, sessions: make(map[netip.AddrPort]*udpSession)}
	s.refs.Store(1)
	return s, nil
}

// udpFamily picks the socket family and bind address for ua, and whether the
// socket should take IPv4 peers on IPv6 (a wildcard "udp" address).
func udpFamily(network string, ua *net.UDPAddr) (family int, bind *net.UDPAddr, dualStack bool) {
	wildcard := len(ua.IP) == 0 || ua.IP.IsUnspecified()
	switch {
	case network == "udp" && wildcard:
		return syscall.AF_INET6, &net.UDPAddr{IP: net.IPv6unspecified, Port: ua.Port}, true
	case network == "udp6" && wildcard:
		return syscall.AF_INET6, &net.UDPAddr{IP: net.IPv6unspecified, Port: ua.Port}, false
	case wildcard, ua.IP.To4() != nil:
		return syscall.AF_INET, &net.UDPAddr{IP: ua.IP.To4(), Port: ua.Port}, false
	}
	return syscall.AF_INET6, ua, false
}

// enter fixes the listener's mode on first use and starts polling; a later
// call in the other mode fails. serve is the EventLoop of Serve, else nil.
func (l *UDPListener) enter(mode int32, serve *server) error {
	if serve == nil && l.mode.Load() == mode {
		return nil
	}
	l.startMu.Lock()
	defer l.startMu.Unlock()
	switch current := l.mode.Load(); {
	case current == mode && serve != nil:
		return errors.New("netpoll: UDP listener already served or accepted from")
	case current == mode:
		return nil
	case current != udpModeNone:
		return errUDPMode
	}
	select {
	case <-l.closed:
		return Exception(ErrConnClosed, "udp listener")
	default:
	}
	l.server = serve
	if mode == udpModePackets {
		l.packets = make(chan udpPacket, packetQueueLen)
	} else {
		l.accepted = make(chan *udpSession, acceptQueueLen)
	}
	// Stored last: the fast path above reads the fields without startMu.
	l.mode.Store(mode)
	return l.startPolling()
}

// startPolling registers each socket with its own poller where there are
// enough: successive round-robin picks give distinct pollers.
func (l *UDPListener) startPolling() error {
	used := make(map[*poller.Poller]bool)
	for _, s := range l.sockets {
		p := pollers.Pick()
		for range 4 * len(l.sockets) {
			if !used[p] {
				break
			}
			p = pollers.Pick()
		}
		if p == nil {
			return errors.New("netpoll: no poller could be started")
		}
		used[p] = true
		s.loop = p
		s.batch = sys.NewDatagramBatch(l.batch, l.maxDatagram)
		op := p.Alloc()
		op.FD = s.fd
		op.OnRead = s.onReadable
		op.OnWrite = s.onWritable
		s.mu.Lock() // WriteTo may be waiting in waitWritable already
		s.op = op
		s.mu.Unlock()
		if err := op.Control(poller.PollReadable); err != nil {
			return err
		}
	}
	return nil
}

// Fd returns the file descriptor of the listener's first socket.
func (l *UDPListener) Fd() int { return l.sockets[0].fd }

// Addr returns the local address.
func (l *UDPListener) Addr() net.Addr { return l.localAddr }

// LocalAddr returns the local address, as net.PacketConn requires.
func (l *UDPListener) LocalAddr() net.Addr { return l.localAddr }

// Truncated returns how many datagrams were larger than the maximum datagram
// size or the buffer given to ReadFrom.
func (l *UDPListener) Truncated() uint64 { return l.truncated.Load() }

// Dropped returns how many datagrams were dropped because the queue they
// waited in was full: a session's input limit, ReadFrom's queue of 1024,
// Accept's queue of 128 new peers, or the session limit (WithMaxSessions).
func (l *UDPListener) Dropped() uint64 { return l.dropped.Load() }

// Close stops receiving and closes the sockets. Sessions that an EventLoop
// or Accept handed out stay open, and may still send, until they close;
// sessions Accept has not returned yet are closed. Blocked ReadFrom and
// Accept calls return an error matching net.ErrClosed.
func (l *UDPListener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		l.startMu.Lock() // no enter is half-way through starting the sockets
		defer l.startMu.Unlock()
		close(l.closed)
		l.closeSockets()
	})
	if !first {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.localAddr, Err: Exception(ErrConnClosed, "")}
	}
	if l.accepted != nil {
		for {
			select {
			case sess := <-l.accepted:
				sess.close()
				continue
			default:
			}
			break
		}
	}
	if l.packets != nil {
		for {
			select {
			case pkt := <-l.packets:
				bufpool.Put(pkt.buf)
				continue
			default:
			}
			break
		}
	}
	return nil
}

// closeSockets detaches each socket and drops the listener's reference.
// The operator is taken out of the socket before it is freed: sessions
// outlive the listener and may still send, and one that finds the socket
// full would otherwise arm write interest on an operator the poller may
// have handed to another fd by then (#15). Without it they fail with
// ErrConnClosed; the senders waiting already are woken.
func (l *UDPListener) closeSockets() {
	for _, s := range l.sockets {
		s.mu.Lock()
		op := s.op
		s.op = nil
		if s.writeReady != nil {
			close(s.writeReady)
			s.writeReady = nil
		}
		s.mu.Unlock()
		if op != nil {
			_ = op.Control(poller.PollDetach)
			op.Free()
		}
		s.release()
	}
}

// Accept waits for a datagram from a new peer and returns the peer's session
// Connection; its first datagram is already buffered. Do not mix with Serve
// or ReadFrom.
func (l *UDPListener) Accept() (net.Conn, error) {
	if err := l.enter(udpModeSessions, nil); err != nil {
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.localAddr, Err: err}
	}
	select {
	case sess := <-l.accepted:
		return sess, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.localAddr, Err: Exception(ErrConnClosed, "")}
	}
}

// String names the listener for logs.
func (l *UDPListener) String() string {
	return fmt.Sprintf("udp listener %v (%d sockets)", l.localAddr, len(l.sockets))
}

// serveUDP is EventLoop.Serve for a UDP listener: the sessions of its peers
// become the server's connections, so Shutdown closes them as it closes TCP
// connections. It returns nil after Shutdown, or an error matching
// net.ErrClosed when the listener is closed without one.
func (s *server) serveUDP(l *UDPListener) error {
	s.mu.Lock()
	if s.stopping || s.listener != nil {
		s.mu.Unlock()
		return errors.New("netpoll: EventLoop already serving or shut down")
	}
	s.listener = l
	s.mu.Unlock()
	if err := l.enter(udpModeSessions, s); err != nil {
		s.mu.Lock()
		s.listener = nil // not ours to close
		s.mu.Unlock()
		return err
	}
	select {
	case err := <-s.done:
		return err
	case <-l.closed:
		// Shutdown sends on done before it closes the listener.
		select {
		case err := <-s.done:
			return err
		default:
			return &net.OpError{Op: "serve", Net: l.network, Addr: l.localAddr, Err: Exception(ErrConnClosed, "")}
		}
	}
}
