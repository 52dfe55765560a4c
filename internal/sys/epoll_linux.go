package sys

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EpollEvent is one epoll registration or readiness report (epoll_event).
type EpollEvent = unix.EpollEvent

// EpollCreate creates an epoll instance; flag is 0 or unix.EPOLL_CLOEXEC.
func EpollCreate(flag int) (int, error) {
	fd, err := unix.EpollCreate1(flag)
	if err != nil {
		return -1, os.NewSyscallError("epoll_create1", err)
	}
	return fd, nil
}

// EpollCtl adds, modifies or deletes (op) the registration of fd in epfd.
func EpollCtl(epfd, op, fd int, ev *EpollEvent) error {
	return wrap("epoll_ctl", unix.EpollCtl(epfd, op, fd, ev))
}

// EpollWait waits up to msec milliseconds (-1: forever) for events on epfd and
// stores them in events. With msec == 0 it polls through RawSyscall6: the call
// cannot block, so telling the scheduler would only cost time. Otherwise it goes
// through Syscall6, so a poller blocked in the kernel releases its P. An
// interrupted wait (EINTR) returns (0, nil); the caller just waits again.
//
// epoll_pwait with a nil signal mask is epoll_wait, and exists on every Linux
// architecture, while epoll_wait is missing on arm64 and riscv64.
func EpollWait(epfd int, events []EpollEvent, msec int) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	ptr := uintptr(unsafe.Pointer(&events[0]))
	var r uintptr
	var e unix.Errno
	if msec == 0 {
		r, _, e = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), ptr, uintptr(len(events)), 0, 0, 0)
	} else {
		r, _, e = unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), ptr, uintptr(len(events)), uintptr(msec), 0, 0)
	}
	return epollResult(r, e)
}

// epollResult turns an epoll_pwait result into (n, error); EINTR is (0, nil).
func epollResult(r uintptr, e unix.Errno) (int, error) {
	switch e {
	case 0:
		return int(r), nil
	case unix.EINTR:
		return 0, nil
	default:
		return 0, os.NewSyscallError("epoll_wait", e)
	}
}

// Eventfd creates a non-blocking, close-on-exec eventfd with a zero counter, the
// cheapest way to wake a blocked epoll_wait from another thread.
func Eventfd() (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("eventfd", err)
	}
	return fd, nil
}

// EpollWaitHoldingP waits like EpollWait, but through RawSyscall6: the
// scheduler is not told, so the calling goroutine keeps its P for the
// whole wait and sysmon never takes it. Only for a wait that something else
// ends soon (the poller's linger timer). The runtime's preemption signal
// still interrupts it (EINTR, returned as (0, nil)), so a stop-the-world
// does not wait for it.
func EpollWaitHoldingP(epfd int, events []EpollEvent, msec int) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	return epollResult(r, e)
}
