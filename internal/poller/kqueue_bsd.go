//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package poller

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// maxEvents is the most events one wait returns, small for the reason
// given in epoll_linux.go.
const maxEvents = 128

// readinessName is what EngineReadiness is called here.
const readinessName = "kqueue"

// errAgain is the "not ready" errno; package sys returns it bare.
var errAgain error = unix.EAGAIN

// zeroTimeout makes kevent poll.
var zeroTimeout unix.Timespec

// backend is the kqueue state of a Poller. The wake-up channel (wakeState) is
// EVFILT_USER where the system has it and a socket pair elsewhere.
type backend struct {
	// Set by open; closed by release.
	kq int
	wakeState
	// Owned by the poller goroutine.
	events  []unix.Kevent_t
	timeout unix.Timespec // a field, so a timed wait allocates nothing
}

// open creates the kqueue and the wake-up channel.
func (p *Poller) open() error {
	kq, err := sys.Kqueue()
	if err != nil {
		return err
	}
	p.kq = kq
	if err := p.openWake(); err != nil {
		sys.Close(kq)
		return err
	}
	p.events = make([]unix.Kevent_t, maxEvents)
	return nil
}

func (p *Poller) wait(msec int) (int, error) {
	var timeout *unix.Timespec
	switch {
	case msec == 0:
		timeout = &zeroTimeout
	case msec > 0:
		p.timeout = unix.NsecToTimespec(int64(msec) * 1e6)
		timeout = &p.timeout
	}
	return sys.Kevent(p.kq, nil, p.events, timeout)
}

// dispatch handles the events of the last wait. kqueue reports each filter
// separately and marks a hang-up with EV_EOF. The udata of a registration names
// its operator (see udataOperator); an operator freed after the kernel queued
// the event has an odd generation and is skipped.
func (p *Poller) dispatch(n int) {
	for i := range p.events[:n] {
		ev := &p.events[i]
		if p.isWake(ev) {
			p.drainWake()
			continue
		}
		op := p.udataOperator(ev)
		if op == nil {
			continue
		}
		gen := op.gen.Load()
		if gen&1 != 0 {
			continue
		}
		hup := ev.Flags&unix.EV_EOF != 0 || ev.Flags&unix.EV_ERROR != 0
		switch int(ev.Filter) {
		case unix.EVFILT_READ:
			p.handle(op, gen, true, false, hup)
		case unix.EVFILT_WRITE:
			p.handle(op, gen, false, true, hup)
		}
	}
}

// arm adds the filters next has and old lacks and deletes the reverse. kqueue
// filters are level-triggered unless EV_CLEAR is given.
func (p *Poller) arm(op *FDOperator, _ uint32, old, next interest, registered bool) error {
	if !registered {
		old = 0
	}
	var changes [2]unix.Kevent_t
	cnt := 0
	for _, f := range [...]struct {
		bit    interest
		filter int
	}{{interestRead, unix.EVFILT_READ}, {interestWrite, unix.EVFILT_WRITE}} {
		var flags int
		switch {
		case next&f.bit != 0 && old&f.bit == 0:
			flags = unix.EV_ADD | unix.EV_ENABLE
		case next&f.bit == 0 && old&f.bit != 0:
			flags = unix.EV_DELETE
		default:
			continue
		}
		unix.SetKevent(&changes[cnt], op.FD, f.filter, flags)
		setUdata(&changes[cnt], op)
		cnt++
	}
	if cnt == 0 {
		return nil
	}
	_, err := sys.Kevent(p.kq, changes[:cnt], nil, nil)
	return err
}

// disarm deletes op's filters. ENOENT and EBADF mean the kernel already
// dropped them because the fd was closed.
func (p *Poller) disarm(op *FDOperator, old interest) error {
	err := p.arm(op, 0, old, 0, true)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EBADF) {
		return nil
	}
	return err
}

func (p *Poller) release() error {
	return errors.Join(p.closeWake(), sys.Close(p.kq))
}
