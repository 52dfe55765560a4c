package sys

import (
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// acceptName names the accept call in wrapped errors.
const acceptName = "accept4"

// accept uses accept4 so the new fd is non-blocking and close-on-exec
// atomically: no window where a concurrent fork/exec inherits it. It calls
// accept4 itself, not unix.Accept4, because that one puts the address on the
// heap twice (the raw buffer and the parsed Sockaddr): over 200 bytes of
// garbage per connection, which a burst of accepts turns into resident
// memory before the collector runs.
func accept(fd int) (int, Peer, error) {
	var p Peer
	size := uint32(unsafe.Sizeof(p.raw))
	r, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd),
		uintptr(unsafe.Pointer(&p.raw)), uintptr(unsafe.Pointer(&size)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, Peer{}, errno
	}
	return int(r), p, nil
}

// Peer is the address of an accepted connection's peer, held by value so
// that accepting allocates nothing; Addr makes the net.Addr.
type Peer struct {
	raw unix.RawSockaddrAny
}

// IPv4 returns the peer's IPv4 address and port, if it is one.
func (p *Peer) IPv4() (ip [4]byte, port uint16, ok bool) {
	if p.raw.Addr.Family != unix.AF_INET {
		return ip, 0, false
	}
	in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&p.raw))
	return in.Addr, ntohs(in.Port), true
}

// Addr returns the peer's address for network ("tcp…" or "unix…"), or nil
// when the kernel reported none (an unnamed unix socket gives an empty name).
func (p *Peer) Addr(network string) net.Addr {
	switch p.raw.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&p.raw))
		return NewTCPAddr(in.Addr[:], int(ntohs(in.Port)), "")
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(&p.raw))
		return NewTCPAddr(in.Addr[:], int(ntohs(in.Port)), zoneName(in.Scope_id))
	case unix.AF_UNIX:
		// As package net reports them: a name up to its first NUL, and an
		// abstract or unnamed address (leading NUL) with '@' for that NUL.
		un := (*unix.RawSockaddrUnix)(unsafe.Pointer(&p.raw))
		name := make([]byte, 0, 16)
		for i, c := range un.Path {
			if c == 0 && i == 0 {
				c = '@'
			} else if c == 0 {
				break
			}
			name = append(name, byte(c))
		}
		return &net.UnixAddr{Name: string(name), Net: network}
	}
	return nil
}

func socket(family, sotype, proto int) (int, error) {
	return unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
}

// SocketPair returns a connected pair of AF_UNIX stream sockets, both
// non-blocking and close-on-exec.
func SocketPair() (r, w int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, os.NewSyscallError("socketpair", err)
	}
	return fds[0], fds[1], nil
}

// setKeepAlivePeriod sets the idle time and the probe interval (tcp(7)).
func setKeepAlivePeriod(fd, secs int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs)
}
