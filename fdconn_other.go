//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package netpoll

import (
	"context"
	"net"

	"github.com/ccb70390/netpoll/internal/sys"
)

// On platforms without epoll or kqueue the package builds, and every
// constructor reports ErrUnsupported.

func (c *connection) connect(ctx context.Context, sa sys.Sockaddr) error {
	return Exception(ErrUnsupported, "connect")
}

// NewFDConnection reports ErrUnsupported on this platform.
func NewFDConnection(fd int) (Connection, error) {
	return nil, Exception(ErrUnsupported, "NewFDConnection")
}

func acceptConnection(l *listener) (net.Conn, error) {
	return nil, Exception(ErrUnsupported, "accept")
}

// SetKeepAlive reports ErrUnsupported on this platform.
func SetKeepAlive(fd, secs int) error {
	return Exception(ErrUnsupported, "SetKeepAlive")
}

// GetSysFdPairs returns -1, -1 on this platform.
func GetSysFdPairs() (r, w int) { return -1, -1 }
