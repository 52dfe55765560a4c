package sys

import "golang.org/x/sys/unix"

// setKeepAlivePeriod sets the idle time (darwin calls it TCP_KEEPALIVE) and the
// probe interval.
func setKeepAlivePeriod(fd, secs int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPALIVE, secs); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs)
}
