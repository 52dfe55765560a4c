//go:build unix

package main

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ccb70390/netpoll"
)

// shutdownWrite half-closes c: the peer reads end of stream, and can still
// send. The Connection interface has no CloseWrite, so this goes to the
// socket through the descriptor that the concrete connection exposes.
func shutdownWrite(c netpoll.Connection) error {
	fc, ok := c.(interface{ Fd() int })
	if !ok {
		return c.Close()
	}
	if !c.IsActive() {
		return nil
	}
	// ENOTCONN: the peer reset the connection first; there is nothing to end.
	err := syscall.Shutdown(fc.Fd(), syscall.SHUT_WR)
	if err != nil && !errors.Is(err, syscall.ENOTCONN) {
		return fmt.Errorf("proxy: shutdown: %w", err)
	}
	return nil
}
