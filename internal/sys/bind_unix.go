//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"net"

	"golang.org/x/sys/unix"
)

// Bind binds fd to addr, a TCP, UDP or unix address, as a dialer with a
// local address needs.
func Bind(fd int, addr net.Addr) error {
	_, sa, err := SockaddrFromAddr(addr)
	if err != nil {
		return err
	}
	return wrap("bind", unix.Bind(fd, sa))
}
