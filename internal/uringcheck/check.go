// Package uringcheck tests a kernel's io_uring multishot receive for the
// loss of a stream socket's EOF, on a bare ring (see cmd/uring-unix-eof).
package uringcheck

import "errors"

// ErrRefused wraps the kernel's refusal to set up the ring or its
// provided buffers (an old kernel, io_uring disabled, a seccomp profile).
var ErrRefused = errors.New("io_uring refused")

// Result is what Run saw.
type Result struct {
	Transfers int // transfers made
	LostEOF   int // transfers whose receive never reported the writer's close
}

// transferSize is what each transfer streams before its writer closes.
const transferSize = 1 << 20
