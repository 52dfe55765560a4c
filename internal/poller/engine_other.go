//go:build !linux

package poller

import (
	"errors"
	"fmt"
	"runtime"
)

// errNoRing is why EngineIOURing falls back here: io_uring is Linux's.
var errNoRing = fmt.Errorf("netpoll: io_uring on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// openRing fails: there is no io_uring on this platform.
func (p *Poller) openRing() error { return errNoRing }

// uringOp is the io_uring state of an operator; empty without io_uring.
type uringOp struct{}
