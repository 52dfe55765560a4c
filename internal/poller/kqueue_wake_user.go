//go:build darwin || dragonfly || freebsd

package poller

import (
	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// wakeIdent is the ident of the EVFILT_USER wake-up event.
const wakeIdent = 0

// wakeState is empty: EVFILT_USER lives in the kqueue itself.
type wakeState struct{}

// openWake registers the user event. EV_CLEAR resets it once reported, so no
// draining is needed.
func (p *Poller) openWake() error {
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], wakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	_, err := sys.Kevent(p.kq, ev[:], nil, nil)
	return err
}

func (p *Poller) notify() error {
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], wakeIdent, unix.EVFILT_USER, 0)
	ev[0].Fflags = unix.NOTE_TRIGGER
	_, err := sys.Kevent(p.kq, ev[:], nil, nil)
	return err
}

func (p *Poller) isWake(ev *unix.Kevent_t) bool { return int(ev.Filter) == unix.EVFILT_USER }

func (p *Poller) drainWake() {}

func (p *Poller) closeWake() error { return nil }
