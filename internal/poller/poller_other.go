//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package poller

import (
	"errors"
	"fmt"
	"runtime"
)

// errUnsupported is what New returns here; it matches errors.ErrUnsupported.
var errUnsupported = fmt.Errorf("netpoll: poller on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// readinessName is what EngineReadiness is called here: there is none.
const readinessName = "none"

// errAgain is never returned on this platform.
var errAgain = errors.New("netpoll: not ready")

// backend is empty: there is no poller on this platform.
type backend struct{}

func (p *Poller) open() error                        { return errUnsupported }
func (p *Poller) wait(int) (int, error)              { return 0, errUnsupported }
func (p *Poller) dispatch(int)                       {}
func (p *Poller) notify() error                      { return errUnsupported }
func (p *Poller) disarm(*FDOperator, interest) error { return errUnsupported }
func (p *Poller) release() error                     { return nil }

func (p *Poller) arm(*FDOperator, uint32, interest, interest, bool) error {
	return errUnsupported
}
