//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package netpoll

import (
	"context"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// connect connects c's socket to sa, waiting on a poller for a connect in
// progress until ctx ends.
func (c *connection) connect(ctx context.Context, sa sys.Sockaddr) error {
	err := sys.Connect(c.fd, sa)
	if err == nil {
		return c.register(pollers.Pick(), false)
	}
	if err != unix.EINPROGRESS {
		return err
	}
	c.connecting.Store(true)
	trigger := c.writeTrigger.get(1) // before registering: the poller may signal at once
	if err = c.register(pollers.Pick(), true); err != nil {
		return err
	}
	select {
	case <-trigger:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Exception(ErrDialTimeout, "dial "+addrString(c.RemoteAddr()))
		}
		return ctx.Err()
	}
	if err = sys.SocketError(c.fd); err != nil {
		return err
	}
	c.connecting.Store(false)
	if err = c.operator.Control(poller.PollRW2R); err != nil {
		return err
	}
	return c.operator.Control(poller.PollResumeRead)
}

// NewFDConnection makes a Connection of fd, a connected stream socket,
// served by the library's pollers. The Connection owns fd from then on.
func NewFDConnection(fd int) (Connection, error) {
	if err := sys.SetNonblock(fd); err != nil {
		return nil, err
	}
	network := "tcp"
	if sa, err := sys.Getsockname(fd); err == nil {
		if _, ok := sa.(*unix.SockaddrUnix); ok {
			network = "unix"
		}
	}
	return newPolledConnection(fd, network, nil)
}

// newPolledConnection wraps an open, connected fd and starts polling it.
func newPolledConnection(fd int, network string, remote net.Addr) (*connection, error) {
	c := &connection{}
	c.init(fd, network, nil)
	c.owner = c
	c.setRemoteAddr(remote)
	if network == "tcp" {
		_ = sys.SetNoDelay(fd, true)
	}
	if err := c.register(pollers.Pick(), false); err != nil {
		_ = sys.Close(fd)
		return nil, err
	}
	c.stats.dialed.Add(1)
	return c, nil
}

// acceptConnection accepts with package net, which waits on the runtime's
// poller (a listener's RawConn cannot wait for reads), then takes the socket
// over: a duplicate of its fd joins our pollers and the net.Conn is closed.
func acceptConnection(l *listener) (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: ErrUnsupported}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err = raw.Control(func(f uintptr) { fd, dupErr = sys.Dup(int(f)) }); err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: err}
	}
	return newPolledConnection(fd, l.Addr().Network(), nc.RemoteAddr())
}

// SetKeepAlive turns on TCP keepalive on fd, probing every secs seconds.
func SetKeepAlive(fd, secs int) error {
	return sys.SetKeepAlive(fd, secs)
}

// GetSysFdPairs returns the two ends of a new connected socket pair.
func GetSysFdPairs() (r, w int) {
	r, w, _ = sys.SocketPair()
	return r, w
}
