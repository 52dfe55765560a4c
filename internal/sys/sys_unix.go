//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

// Package sys holds the raw system calls and socket options the poller and the
// connections use. Every wrapper retries EINTR and wraps a failure once with
// os.NewSyscallError, so errors.Is(err, unix.ECONNRESET) still works. Two errors
// are returned bare, because callers compare them with ==: unix.EAGAIN (the
// socket is not ready; wait for the poller) and unix.EINPROGRESS (a non-blocking
// connect has started).
//
// The system calls that tests need to fail on demand go through the *Hook
// variables, as net's hook_unix.go does, so a test can inject EMFILE, EAGAIN or
// ECONNRESET without a misbehaving kernel.
package sys

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Iovec is one element of a readv/writev vector. Callers keep a scratch slice of
// them so that [Readv] and [Writev] do not allocate.
type Iovec = unix.Iovec

// Sockaddr is the socket address type the wrappers take and return.
type Sockaddr = unix.Sockaddr

// IOVMax is the most buffers one readv or writev passes to the kernel
// (IOV_MAX is 1024 on Linux and the BSDs); [Readv] and [Writev] clamp to it.
const IOVMax = 1024

// The hooks below are the raw system calls behind the wrappers of this package.
// Each returns the kernel's errno unwrapped; the wrapper retries EINTR and wraps
// other errors. Tests replace a hook to inject a failure and restore it in
// t.Cleanup. Not safe to change while any goroutine may call the wrapper: swap a
// hook before starting the goroutines that use it.
var (
	// AcceptHook accepts one connection on fd; the new fd must be non-blocking
	// and close-on-exec.
	AcceptHook = accept
	// ReadHook is read(2).
	ReadHook = read
	// ReadvHook is readv(2) over iovs.
	ReadvHook = readv
	// WriteHook is write(2).
	WriteHook = write
	// WritevHook is writev(2) over iovs.
	WritevHook = writev
	// CloseHook is close(2).
	CloseHook = unix.Close
	// ConnectHook is connect(2).
	ConnectHook = unix.Connect
	// SocketHook creates a non-blocking, close-on-exec socket.
	SocketHook = socket
)

// wrap wraps a failed system call's errno once, leaving the errors callers
// compare with == bare (see the package comment).
func wrap(name string, err error) error {
	if err == nil || err == unix.EAGAIN || err == unix.EINPROGRESS {
		return err
	}
	return os.NewSyscallError(name, err)
}

// Accept accepts one connection on the listening socket fd. The new socket is
// non-blocking and close-on-exec. It returns unix.EAGAIN bare when no
// connection is pending; EMFILE and ENFILE come back wrapped, and the caller
// decides whether to back off.
func Accept(fd int) (nfd int, peer Peer, err error) {
	for {
		nfd, peer, err = AcceptHook(fd)
		if err != unix.EINTR {
			return nfd, peer, wrap(acceptName, err)
		}
	}
}

// Read reads up to len(p) bytes from fd. n == 0 with a nil error is end of
// input. unix.EAGAIN comes back bare when nothing is buffered.
func Read(fd int, p []byte) (n int, err error) {
	for {
		n, err = ReadHook(fd, p)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, wrap("read", err)
	}
	return n, nil
}

// Readv reads from fd into bufs in order, skipping empty buffers. iovs is the
// caller's scratch space: at most min(len(iovs), IOVMax) buffers are filled in one
// call, so pass len(iovs) >= min(len(bufs), IOVMax) to use them all. Readv does
// not allocate and does not retain bufs: the scratch is cleared before it
// returns. n == 0 with a nil error is end of input (or no non-empty buffer).
func Readv(fd int, bufs [][]byte, iovs []Iovec) (n int, err error) {
	cnt := fillIovecs(bufs, iovs)
	if cnt == 0 {
		return 0, nil
	}
	for {
		n, err = ReadvHook(fd, iovs[:cnt])
		if err != unix.EINTR {
			break
		}
	}
	clear(iovs[:cnt])
	if err != nil {
		return 0, wrap("readv", err)
	}
	return n, nil
}

// Write writes p to fd and returns how many bytes the kernel took, which may be
// fewer than len(p) for a non-blocking socket. unix.EAGAIN comes back bare when
// the send buffer is full.
func Write(fd int, p []byte) (n int, err error) {
	for {
		n, err = WriteHook(fd, p)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, wrap("write", err)
	}
	return n, nil
}

// Writev writes bufs to fd in order with one writev(2), skipping empty buffers
// and passing at most min(len(iovs), IOVMax) of them; n counts the bytes written,
// which may end inside any buffer. iovs is the caller's scratch space as in
// [Readv]. Writev does not allocate and does not retain bufs.
func Writev(fd int, bufs [][]byte, iovs []Iovec) (n int, err error) {
	cnt := fillIovecs(bufs, iovs)
	if cnt == 0 {
		return 0, nil
	}
	for {
		n, err = WritevHook(fd, iovs[:cnt])
		if err != unix.EINTR {
			break
		}
	}
	clear(iovs[:cnt])
	if err != nil {
		return 0, wrap("writev", err)
	}
	return n, nil
}

// fillIovecs points iovs at the non-empty buffers of bufs and returns how many
// it filled, at most min(len(iovs), IOVMax).
func fillIovecs(bufs [][]byte, iovs []Iovec) int {
	limit := min(len(iovs), IOVMax)
	cnt := 0
	for _, b := range bufs {
		if cnt == limit {
			break
		}
		if len(b) == 0 {
			continue
		}
		iovs[cnt].Base = &b[0]
		iovs[cnt].SetLen(len(b))
		cnt++
	}
	return cnt
}

// Close closes fd. EINTR is not retried: on Linux and the BSDs the descriptor
// is released even when close(2) is interrupted, and retrying could close an
// fd another goroutine just opened.
func Close(fd int) error {
	err := CloseHook(fd)
	if err == unix.EINTR {
		return nil
	}
	return wrap("close", err)
}

// Socket creates a non-blocking, close-on-exec socket.
func Socket(family, sotype, proto int) (int, error) {
	fd, err := SocketHook(family, sotype, proto)
	if err != nil {
		return -1, wrap("socket", err)
	}
	return fd, nil
}

// Connect starts connecting the non-blocking socket fd to sa. It returns nil if
// the connection completed at once, or unix.EINPROGRESS bare when it continues
// in the background: wait for writability, then read the outcome with
// [SocketError]. EINTR and EALREADY mean the same to a non-blocking connect (see
// net/fd_unix.go) and are reported as EINPROGRESS; EISCONN is success.
func Connect(fd int, sa unix.Sockaddr) error {
	switch err := ConnectHook(fd, sa); err {
	case nil, unix.EISCONN:
		return nil
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		return unix.EINPROGRESS
	default:
		return wrap("connect", err)
	}
}

// SocketError returns the pending error of fd (getsockopt SO_ERROR), which is
// how a non-blocking connect reports its outcome: nil when it succeeded, the
// errno wrapped as a "connect" error when it failed, unix.EINPROGRESS bare when
// it has not finished yet.
func SocketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	switch errno := syscall.Errno(v); errno {
	case 0:
		return nil
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		return unix.EINPROGRESS
	default:
		return os.NewSyscallError("connect", errno)
	}
}

// Shutdown shuts down the read side, write side or both (unix.SHUT_RD,
// SHUT_WR, SHUT_RDWR) of fd.
func Shutdown(fd, how int) error {
	return wrap("shutdown", unix.Shutdown(fd, how))
}

// SetNonblock puts fd in non-blocking mode.
func SetNonblock(fd int) error {
	return wrap("setnonblock", unix.SetNonblock(fd, true))
}

// SetNoDelay turns Nagle's algorithm off (on == true) or on for the TCP socket fd.
func SetNoDelay(fd int, on bool) error {
	return wrap("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(on)))
}

// SetKeepAlive turns TCP keep-alive on for fd and sets both the idle time before
// the first probe and the interval between probes to secs seconds, where the
// platform lets us (see setKeepAlivePeriod). secs <= 0 turns keep-alive off.
func SetKeepAlive(fd, secs int) error {
	if secs <= 0 {
		return wrap("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return wrap("setsockopt", err)
	}
	return wrap("setsockopt", setKeepAlivePeriod(fd, secs))
}

// SetReuseAddr sets SO_REUSEADDR, so a restarted server can bind its port while
// old connections linger in TIME_WAIT.
func SetReuseAddr(fd int) error {
	return wrap("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1))
}

// SetReusePort sets SO_REUSEPORT, so several listeners can share one port.
func SetReusePort(fd int) error {
	return wrap("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
}

// Getsockname returns the local address of fd.
func Getsockname(fd int) (unix.Sockaddr, error) {
	sa, err := unix.Getsockname(fd)
	return sa, wrap("getsockname", err)
}

// Getpeername returns the remote address of fd.
func Getpeername(fd int) (unix.Sockaddr, error) {
	sa, err := unix.Getpeername(fd)
	return sa, wrap("getpeername", err)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
