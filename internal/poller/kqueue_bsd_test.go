//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package poller

import "testing"

// wakePending cannot peek at an EVFILT_USER event from outside the loop, so
// on BSD TestTriggerWakesBlockedWait checks only that the poller blocks again.
func wakePending(t testing.TB, p *Poller) bool { return false }
