//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package sys

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// errUnsupported is what every function returns on a platform without a poller
// backend; it matches errors.ErrUnsupported.
var errUnsupported = fmt.Errorf("netpoll: %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)

// Sockaddr stands for a socket address on platforms without one, so code that
// names it still compiles.
type Sockaddr interface{}

// Iovec stands for a readv/writev vector element on platforms without one.
type Iovec struct{}

// IOVMax is the most buffers one readv or writev passes to the kernel.
const IOVMax = 1024

// Peer stands for an accepted connection's peer address on platforms
// without sockets.
type Peer struct{}

// IPv4 reports false: there is no address on this platform.
func (p *Peer) IPv4() (ip [4]byte, port uint16, ok bool) { return ip, 0, false }

// Addr returns nil: there is no address on this platform.
func (p *Peer) Addr(network string) net.Addr { return nil }

// Accept is not supported on this platform.
func Accept(fd int) (nfd int, peer Peer, err error) { return -1, Peer{}, errUnsupported }

// Read is not supported on this platform.
func Read(fd int, p []byte) (n int, err error) { return 0, errUnsupported }

// Readv is not supported on this platform.
func Readv(fd int, bufs [][]byte, iovs []Iovec) (n int, err error) { return 0, errUnsupported }

// Write is not supported on this platform.
func Write(fd int, p []byte) (n int, err error) { return 0, errUnsupported }

// Writev is not supported on this platform.
func Writev(fd int, bufs [][]byte, iovs []Iovec) (n int, err error) { return 0, errUnsupported }

// Close is not supported on this platform.
func Close(fd int) error { return errUnsupported }

// Socket is not supported on this platform.
func Socket(family, sotype, proto int) (int, error) { return -1, errUnsupported }

// Connect is not supported on this platform.
func Connect(fd int, sa Sockaddr) error { return errUnsupported }

// SocketError is not supported on this platform.
func SocketError(fd int) error { return errUnsupported }

// Shutdown is not supported on this platform.
func Shutdown(fd, how int) error { return errUnsupported }

// SetNonblock is not supported on this platform.
func SetNonblock(fd int) error { return errUnsupported }

// SetNoDelay is not supported on this platform.
func SetNoDelay(fd int, on bool) error { return errUnsupported }

// SetKeepAlive is not supported on this platform.
func SetKeepAlive(fd, secs int) error { return errUnsupported }

// SetReuseAddr is not supported on this platform.
func SetReuseAddr(fd int) error { return errUnsupported }

// SetReusePort is not supported on this platform.
func SetReusePort(fd int) error { return errUnsupported }

// Getsockname is not supported on this platform.
func Getsockname(fd int) (Sockaddr, error) { return nil, errUnsupported }

// Getpeername is not supported on this platform.
func Getpeername(fd int) (Sockaddr, error) { return nil, errUnsupported }

// SockaddrToAddr returns nil on this platform.
func SockaddrToAddr(network string, sa Sockaddr) net.Addr { return nil }

// SockaddrFromAddr is not supported on this platform.
func SockaddrFromAddr(addr net.Addr) (family int, sa Sockaddr, err error) {
	return 0, nil, errUnsupported
}

// SocketPair is not supported on this platform.
func SocketPair() (r, w int, err error) { return -1, -1, errUnsupported }

// Bind reports an unsupported-platform error.
func Bind(fd int, addr net.Addr) error { return errUnsupported }

// Dup reports an unsupported-platform error.
func Dup(fd int) (int, error) { return -1, errUnsupported }
