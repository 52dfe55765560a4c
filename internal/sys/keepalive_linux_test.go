package sys

import (
	"testing"

	"golang.org/x/sys/unix"
)

func checkKeepAlivePeriod(t testing.TB, fd, secs int) {
	t.Helper()
	for _, opt := range []int{unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL} {
		if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, opt); err != nil || v != secs {
			t.Fatalf("getsockopt(%#x) = %d, %v; want %d", opt, v, err, secs)
		}
	}
}
