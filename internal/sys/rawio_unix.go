//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The data system calls on a connection's socket (read, readv, write,
// writev here; UDP's recvmmsg, sendmmsg and sendmsg in udp_linux.go, with
// MSG_DONTWAIT) go through RawSyscall: the scheduler is not told, and the calling
// goroutine keeps its P for the call. Every socket this package reads or
// writes is non-blocking, so the call returns in the time it takes to copy
// the bytes (EAGAIN rather than a wait), and telling the scheduler costs more
// than it saves: a call that spans two of sysmon's looks has its P taken and
// handed to another thread, which finds nothing to run, and once sysmon has
// taken a P it keeps looking every 20 µs. At light load (Hertz at 10k req/s,
// GOMAXPROCS=1) that loop cost about a tenth of the server's CPU in futex
// wake-ups, context switches and sysmon's own work.
//
// Race-detector builds keep x/sys's wrappers for read and write, whose
// annotations tell the detector that a write to a socket happens before the
// read of those bytes at its other end; without them a test that hands data
// through a socket pair would be reported as a race.

func read(fd int, p []byte) (int, error) {
	if raceEnabled {
		return unix.Read(fd, p)
	}
	return rawBuffer(unix.SYS_READ, fd, p)
}

func write(fd int, p []byte) (int, error) {
	if raceEnabled {
		return unix.Write(fd, p)
	}
	return rawBuffer(unix.SYS_WRITE, fd, p)
}

func readv(fd int, iovs []Iovec) (int, error) { return rawVector(unix.SYS_READV, fd, iovs) }

func writev(fd int, iovs []Iovec) (int, error) { return rawVector(unix.SYS_WRITEV, fd, iovs) }

// rawBuffer makes system call trap (read or write) on fd and p.
func rawBuffer(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawVector makes system call trap (readv or writev) on fd and iovs.
func rawVector(trap uintptr, fd int, iovs []Iovec) (int, error) {
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&iovs[0])), uintptr(len(iovs)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
