//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// acceptName names the accept call in wrapped errors.
const acceptName = "accept"

// accept sets close-on-exec under syscall.ForkLock, as package net does where
// accept4 is missing (darwin), so a concurrent fork/exec cannot inherit the fd.
func accept(fd int) (int, Peer, error) {
	syscall.ForkLock.RLock()
	nfd, sa, err := unix.Accept(fd)
	if err == nil {
		unix.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, Peer{}, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, Peer{}, err
	}
	return nfd, Peer{sa: sa}, nil
}

// Peer is the address of an accepted connection's peer; Addr makes the
// net.Addr.
type Peer struct {
	sa unix.Sockaddr
}

// IPv4 returns the peer's IPv4 address and port, if it is one.
func (p *Peer) IPv4() (ip [4]byte, port uint16, ok bool) {
	if sa, isInet4 := p.sa.(*unix.SockaddrInet4); isInet4 {
		return sa.Addr, uint16(sa.Port), true
	}
	return ip, 0, false
}

// Addr returns the peer's address for network ("tcp…" or "unix…"), or nil
// when the kernel reported none.
func (p *Peer) Addr(network string) net.Addr {
	return SockaddrToAddr(network, p.sa)
}

func socket(family, sotype, proto int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, sotype, proto)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// SocketPair returns a connected pair of AF_UNIX stream sockets, both
// non-blocking and close-on-exec.
func SocketPair() (r, w int, err error) {
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, os.NewSyscallError("socketpair", err)
	}
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return -1, -1, os.NewSyscallError("setnonblock", err)
		}
	}
	return fds[0], fds[1], nil
}
