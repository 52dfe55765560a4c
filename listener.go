package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/sys"
)

// Listener is a net.Listener that exposes its file descriptor.
type Listener interface {
	net.Listener

	// Fd returns the listener's file descriptor.
	Fd() (fd int)
}

// ListenerOption configures a listener made by [CreateListener].
type ListenerOption struct {
	apply func(o *listenerOptions)
}

// listenerOptions is what the ListenerOption values of one listener set.
type listenerOptions struct {
	reusePort bool

	// UDP (udp.go): zero means the default.
	maxDatagram   int
	datagramBatch int
	maxSessions   int // negative: no bound

	// TLS (tls.go): a nil tlsConfig means plain.
	tlsConfig           *tls.Config
	handshakeTimeout    time.Duration
	handshakeTimeoutSet bool
}

// WithSocketReusePort sets SO_REUSEPORT on the listening socket, so several
// listeners, in one process or many, can bind the same port and the kernel
// spreads new connections across them: the way to scale accepting past one
// core or one process.
func WithSocketReusePort(on bool) ListenerOption {
	return ListenerOption{func(o *listenerOptions) { o.reusePort = on }}
}

// CreateListener listens on addr; network is "tcp", "tcp4", "tcp6" or "unix",
// or "udp", "udp4" or "udp6" for a [*UDPListener]. Serve it with an EventLoop.
// Calling Accept directly returns connections of this library.
func CreateListener(network, addr string, opts ...ListenerOption) (l Listener, err error) {
	var o listenerOptions
	for _, opt := range opts {
		if opt.apply != nil {
			opt.apply(&o)
		}
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	case "udp", "udp4", "udp6":
		return createUDPListener(network, addr, &o) // a *UDPListener; see udp.go
	default:
		return nil, net.UnknownNetworkError(network)
	}
	lc := net.ListenConfig{}
	if o.reusePort {
		lc.Control = setReusePort
	}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	if l, err = ConvertListener(ln); err != nil {
		_ = ln.Close()
		return nil, err
	}
	if o.tlsConfig != nil {
		if l, err = newTLSListener(l, &o); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}
	return l, nil
}

// ConvertListener makes a Listener of l, which must be a TCP or unix
// listener of package net (or already a Listener). The Listener closes l.
func ConvertListener(l net.Listener) (nl Listener, err error) {
	if nl, ok := l.(Listener); ok {
		return nl, nil
	}
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil, errors.New("netpoll: listener has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	if err = raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return nil, err
	}
	return &listener{Listener: l, fd: fd}, nil
}

// listener serves Accept through package net, and Serve through our pollers
// on fd: both watch the same socket.
type listener struct {
	net.Listener
	fd int
}

// Fd returns the listener's file descriptor.
func (l *listener) Fd() int { return l.fd }

// Accept waits for a connection and returns it as a Connection of this
// library, polled by its pollers.
func (l *listener) Accept() (net.Conn, error) {
	return acceptConnection(l)
}

// setReusePort is a net.ListenConfig.Control that sets SO_REUSEPORT.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = sys.SetReusePort(int(fd)) }); cerr != nil {
		return cerr
	}
	return err
}
