//go:build dragonfly || freebsd || netbsd

package sys

import "golang.org/x/sys/unix"

// setKeepAlivePeriod sets the idle time and the probe interval (tcp(4)).
func setKeepAlivePeriod(fd, secs int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs)
}
