package poller

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// Event buffer sizes: start small, double whenever a wait fills the buffer.
const (
	minEvents = 128
	maxEvents = 8192
)

// wakeIndex is the epoll data of the eventfd; operators have indexes >= 0.
const wakeIndex = -1

// hupEvents are the epoll bits that mean the connection is going away.
const hupEvents = unix.EPOLLHUP | unix.EPOLLERR | unix.EPOLLRDHUP

// errAgain is the "not ready" errno; package sys returns it bare.
var errAgain error = unix.EAGAIN

// wakeValue is what notify adds to the eventfd counter; any non-zero value wakes.
var wakeValue = [8]byte{1}

// backend is the epoll state of a Poller.
type backend struct {
	// Set by open; closed by release.
	epfd, wakefd int
	// Owned by the poller goroutine.
	events  []sys.EpollEvent
	wakeBuf [8]byte
}

// open creates the epoll instance and the eventfd that Trigger writes to.
func (p *Poller) open() error {
	epfd, err := sys.EpollCreate(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	wakefd, err := sys.Eventfd()
	if err != nil {
		sys.Close(epfd)
		return err
	}
	ev := sys.EpollEvent{Events: unix.EPOLLIN, Fd: wakeIndex}
	if err := sys.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		sys.Close(wakefd)
		sys.Close(epfd)
		return err
	}
	p.epfd, p.wakefd = epfd, wakefd
	p.events = make([]sys.EpollEvent, minEvents)
	return nil
}

func (p *Poller) wait(msec int) (int, error) {
	return sys.EpollWait(p.epfd, p.events, msec)
}

// dispatch handles the events of the last wait. Each registration's epoll data
// holds the operator's index (Fd) and generation (Pad); an event whose
// generation is not the operator's current one belongs to a registration that
// was detached or freed after the kernel queued it, and is dropped.
func (p *Poller) dispatch(n int) {
	for i := range p.events[:n] {
		ev := &p.events[i]
		if ev.Fd == wakeIndex {
			p.drainWake()
			continue
		}
		op := p.ops.get(ev.Fd)
		if op == nil {
			continue
		}
		gen := op.gen.Load()
		if gen != uint32(ev.Pad) {
			continue
		}
		p.handle(op, gen,
			ev.Events&(unix.EPOLLIN|hupEvents) != 0,
			ev.Events&unix.EPOLLOUT != 0,
			ev.Events&hupEvents != 0)
	}
	if n == len(p.events) && n < maxEvents {
		p.events = make([]sys.EpollEvent, 2*n)
	}
}

// drainWake resets the eventfd counter so the level-triggered wake-up stops.
func (p *Poller) drainWake() {
	sys.Read(p.wakefd, p.wakeBuf[:]) // EAGAIN: already drained
}

// notify adds to the eventfd counter. EAGAIN means the counter is full, so a
// wake-up is pending anyway.
func (p *Poller) notify() error {
	if _, err := sys.Write(p.wakefd, wakeValue[:]); err != nil && err != unix.EAGAIN {
		return err
	}
	return nil
}

// epollEvents maps an interest to epoll bits. EPOLLRDHUP rides along with
// read interest only: it is level-triggered, so with write interest alone it
// would repeat for a half-closed socket that is still sending its reply. An
// empty interest is a registration the kernel still reports ERR and HUP on.
func epollEvents(in interest) uint32 {
	var ev uint32
	if in&interestRead != 0 {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if in&interestWrite != 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

func (p *Poller) arm(op *FDOperator, gen uint32, _, next interest, registered bool) error {
	ctl := unix.EPOLL_CTL_ADD
	if registered {
		ctl = unix.EPOLL_CTL_MOD
	}
	ev := sys.EpollEvent{Events: epollEvents(next), Fd: op.index, Pad: int32(gen)}
	return sys.EpollCtl(p.epfd, ctl, op.FD, &ev)
}

// disarm deletes op's registration. ENOENT and EBADF mean the kernel already
// dropped it because the fd was closed.
func (p *Poller) disarm(op *FDOperator, _ interest) error {
	err := sys.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, op.FD, nil)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EBADF) {
		return nil
	}
	return err
}

func (p *Poller) release() error {
	return errors.Join(sys.Close(p.wakefd), sys.Close(p.epfd))
}
