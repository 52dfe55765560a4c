//go:build netbsd || openbsd

package poller

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// wakeState is a socket pair: these systems (in x/sys) have no EVFILT_USER.
type wakeState struct {
	// Set by openWake; closed by closeWake.
	wakeR, wakeW int
	// Owned by the poller goroutine.
	wakeBuf [64]byte
}

// wakeByte is what notify writes; its value does not matter.
var wakeByte = [1]byte{1}

func (p *Poller) openWake() error {
	r, w, err := sys.SocketPair()
	if err != nil {
		return err
	}
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], r, unix.EVFILT_READ, unix.EV_ADD)
	if _, err := sys.Kevent(p.kq, ev[:], nil, nil); err != nil {
		sys.Close(r)
		sys.Close(w)
		return err
	}
	p.wakeR, p.wakeW = r, w
	return nil
}

// notify writes one byte. EAGAIN means the pair is full: a wake-up is pending.
func (p *Poller) notify() error {
	if _, err := sys.Write(p.wakeW, wakeByte[:]); err != nil && err != unix.EAGAIN {
		return err
	}
	return nil
}

func (p *Poller) isWake(ev *unix.Kevent_t) bool {
	return int(ev.Filter) == unix.EVFILT_READ && int(ev.Ident) == p.wakeR
}

// drainWake empties the pair so the level-triggered read filter stops firing.
func (p *Poller) drainWake() {
	for {
		if n, _ := sys.Read(p.wakeR, p.wakeBuf[:]); n < len(p.wakeBuf) {
			return
		}
	}
}

func (p *Poller) closeWake() error {
	return errors.Join(sys.Close(p.wakeR), sys.Close(p.wakeW))
}
