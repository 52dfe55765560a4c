//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import "golang.org/x/sys/unix"

// Dup duplicates fd, close-on-exec, so that the copy outlives a close of the
// original (used to take a socket over from package net).
func Dup(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	return nfd, wrap("fcntl", err)
}
