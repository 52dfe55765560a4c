package netpoll

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// The error values of the library. They are syscall.Errno values in the range
// 0x100–0x1FF, so user code may compare them with ==, with errors.Is, or by a
// type assertion to syscall.Errno. Errors returned with context (see
// [Exception]) still match their value under errors.Is.
const (
	// ErrConnClosed reports that the connection was closed while in use.
	ErrConnClosed = syscall.Errno(0x101)
	// ErrReadTimeout reports that a blocking read ran past its read timeout or deadline.
	ErrReadTimeout = syscall.Errno(0x102)
	// ErrDialTimeout reports that dialing ran past its timeout.
	ErrDialTimeout = syscall.Errno(0x103)
	// ErrDialNoDeadline reports a dial without a deadline where one is needed.
	ErrDialNoDeadline = syscall.Errno(0x104)
	// ErrUnsupported reports a call that is not supported on this platform or object.
	ErrUnsupported = syscall.Errno(0x105)
	// ErrEOF reports that the peer closed and no more input will come. It
	// matches ErrConnClosed under errors.Is but not io.EOF, as in
	// cloudwego/netpoll: consumers tell a clean end of stream (io.EOF) from a
	// connection cut under them by that difference (Kitex ttstream's
	// DecodeFrame, issue #16). The net.Conn Read method returns a bare io.EOF
	// instead, as io.Reader requires.
	ErrEOF = syscall.Errno(0x106)
	// ErrWriteTimeout reports that a flush ran past its write timeout or deadline.
	ErrWriteTimeout = syscall.Errno(0x107)
	// ErrConcurrentAccess reports that two goroutines used one side of the
	// nocopy Reader or Writer at the same time.
	ErrConcurrentAccess = syscall.Errno(0x108)
)

// ErrnoMask masks an errno down to its low byte, the part that tells the
// library's errors apart.
const ErrnoMask = 0xFF

// errorMessages holds the text of each library errno; syscall.Errno.Error
// would otherwise print "errno 257".
var errorMessages = [...]string{
	ErrConnClosed & ErrnoMask:       "connection has been closed",
	ErrReadTimeout & ErrnoMask:      "connection read timeout",
	ErrDialTimeout & ErrnoMask:      "dial wait timeout",
	ErrDialNoDeadline & ErrnoMask:   "dial no deadline",
	ErrUnsupported & ErrnoMask:      "netpoll does not support",
	ErrEOF & ErrnoMask:              "EOF",
	ErrWriteTimeout & ErrnoMask:     "connection write timeout",
	ErrConcurrentAccess & ErrnoMask: "concurrent connection access",
}

// exception is a library errno with context. It keeps the errno reachable for
// errors.Is and behaves as a net.Error, so a timeout stays recognisable.
type exception struct {
	no     syscall.Errno
	suffix string
	cause  error
}

// Exception returns err with suffix as context. When err is one of the
// library's errno values the result still matches it under errors.Is, is a
// net.Error whose Timeout reports the dial, read and write timeouts, and one
// that carries ErrEOF also matches ErrConnClosed (but not io.EOF, as in the
// reference). Other errors are returned wrapped with the suffix.
func Exception(err error, suffix string) error {
	var no syscall.Errno
	if errors.As(err, &no) && isLibraryErrno(no) {
		return &exception{no: no, suffix: suffix, cause: err}
	}
	if err == nil {
		return nil
	}
	if suffix == "" {
		return err
	}
	return &wrapped{msg: suffix, err: err}
}

// isLibraryErrno reports whether no is one of the library's own values.
func isLibraryErrno(no syscall.Errno) bool {
	return no&^ErrnoMask == 0x100
}

func (e *exception) Error() string {
	msg := errnoText(e.no)
	if e.cause != nil && e.cause != error(e.no) {
		msg = e.cause.Error()
	}
	if e.suffix == "" {
		return msg
	}
	// One space, as the reference joins them: logs and alerts that match
	// its messages keep matching.
	return msg + " " + e.suffix
}

// Unwrap lets errors.Is reach the errno and whatever cause it carried.
func (e *exception) Unwrap() []error {
	if e.cause != nil && e.cause != error(e.no) {
		return []error{e.no, e.cause}
	}
	return []error{e.no}
}

// Is makes an ErrEOF-carrying error match ErrConnClosed, a closed one match
// net.ErrClosed, and a timeout match os.ErrDeadlineExceeded, as API.md
// promises.
func (e *exception) Is(target error) bool {
	return errnoIs(e.no, target)
}

// Timeout reports whether the error is a dial, read or write timeout.
func (e *exception) Timeout() bool { return isTimeoutErrno(e.no) }

// Temporary reports the same as Timeout; it exists for net.Error.
func (e *exception) Temporary() bool { return isTimeoutErrno(e.no) }

// errnoIs holds the matching rules shared by every wrapper of a library errno.
func errnoIs(no syscall.Errno, target error) bool {
	switch target {
	case no:
		return true
	case ErrConnClosed:
		return no == ErrEOF
	case net.ErrClosed:
		return no == ErrConnClosed
	case os.ErrDeadlineExceeded:
		return isTimeoutErrno(no)
	}
	return false
}

func isTimeoutErrno(no syscall.Errno) bool {
	return no == ErrReadTimeout || no == ErrWriteTimeout || no == ErrDialTimeout
}

func errnoText(no syscall.Errno) string {
	if isLibraryErrno(no) && int(no&ErrnoMask) < len(errorMessages) {
		if msg := errorMessages[no&ErrnoMask]; msg != "" {
			return msg
		}
	}
	return no.Error()
}

// wrapped adds a suffix to an error that is not one of the library's errnos.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.err.Error() + " " + w.msg }
func (w *wrapped) Unwrap() error { return w.err }
