//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kqueue creates a close-on-exec kqueue.
func Kqueue() (int, error) {
	syscall.ForkLock.RLock()
	kq, err := unix.Kqueue()
	if err == nil {
		unix.CloseOnExec(kq)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, os.NewSyscallError("kqueue", err)
	}
	return kq, nil
}

// Kevent applies changes to kq, then waits for events until timeout (nil:
// forever; a zero Timespec polls). An interrupted wait (EINTR) returns (0, nil);
// the caller just waits again.
func Kevent(kq int, changes, events []unix.Kevent_t, timeout *unix.Timespec) (int, error) {
	n, err := unix.Kevent(kq, changes, events, timeout)
	switch err {
	case nil:
		return n, nil
	case unix.EINTR:
		return 0, nil
	default:
		return 0, os.NewSyscallError("kevent", err)
	}
}
