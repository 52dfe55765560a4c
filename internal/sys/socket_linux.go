package sys

import (
	"os"

	"golang.org/x/sys/unix"
)

// acceptName names the accept call in wrapped errors.
const acceptName = "accept4"

// accept uses accept4 so the new fd is non-blocking and close-on-exec
// atomically: no window where a concurrent fork/exec inherits it.
func accept(fd int) (int, unix.Sockaddr, error) {
	return unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
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
