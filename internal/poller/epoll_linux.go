package poller

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// maxEvents is the most events one wait returns, small on purpose. The
// poller reads every ready socket of a batch before the handlers run, so a
// batch of thousands holds thousands of filled input nodes at once and makes
// the first request wait for every read: at 1,000 busy connections 128 cost
// less CPU per request than the 8,192 the buffer used to grow to (1 KiB echo
// 6.4-6.6 against 6.9-8.0 us), and one more epoll_wait per 128 events costs
// nothing measurable.
const maxEvents = 128

// wakeIndex is the epoll data of the eventfd; operators have indexes >= 0.
const wakeIndex = -1

// hupEvents are the epoll bits that mean the connection is going away.
const hupEvents = unix.EPOLLHUP | unix.EPOLLERR | unix.EPOLLRDHUP

// readinessName is what EngineReadiness is called here.
const readinessName = "epoll"

// errAgain is the "not ready" errno; package sys returns it bare.
var errAgain error = unix.EAGAIN

// wakeValue is what notify adds to the eventfd counter; any non-zero value wakes.
var wakeValue = [8]byte{1}

// backend is the epoll state of a Poller.
//
// An idle poller does not block its thread in epoll_wait for long. The epoll
// fd is itself pollable, so it is registered with the Go runtime's own poller
// (os.NewFile on the non-blocking fd) and the idle poller parks on it through
// RawConn.Read, like a goroutine blocked in net.Conn.Read. A thread blocked
// in epoll_wait with no bound would keep its P from every goroutine woken
// meanwhile, the handlers and the clients of an in-process test alike. Before
// it parks it lingers: it waits in epoll_wait keeping its P, and a tick of its
// linger timer ends each wait, so a woken goroutine waits at most one tick;
// a tick that finds it idle ends the linger (lingertick_linux.go). It does
// not linger where that was seen to hold the P from its own events
// (linger_linux.go). Each poller so has three fds: the epoll instance, the
// wake-up eventfd and the linger timerfd.
//
// With EngineIOURing, ring is set and every method below hands over to
// uring_linux.go; the epoll fields stay unused. One predictable branch per
// call keeps the two engines behind one Poller type.
type backend struct {
	ring *ring // nil on the epoll engine
	// Set by open; closed by release.
	epfd, wakefd int
	epollFile    *os.File        // owns epfd once open succeeds
	epollRaw     syscall.RawConn // parks the idle poller on the runtime's poller
	waitReady    func(uintptr) bool
	// Owned by the poller goroutine.
	events  []sys.EpollEvent
	wakeBuf [8]byte
	waited  int   // events of the last parked wait
	waitErr error // its error
	linger  lingerPolicy
	ticker  lingerTicker
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
	if err := unix.SetNonblock(epfd, true); err != nil {
		sys.Close(wakefd)
		sys.Close(epfd)
		return err
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		sys.Close(wakefd)
		file.Close()
		return err
	}
	if err := p.ticker.open(epfd); err != nil {
		sys.Close(wakefd)
		file.Close()
		return err
	}
	p.epfd, p.wakefd, p.epollFile, p.epollRaw = epfd, wakefd, file, raw
	p.events = make([]sys.EpollEvent, maxEvents)
	// Made once: a closure made per wait would allocate.
	p.waitReady = func(uintptr) bool {
		p.waited, p.waitErr = sys.EpollWait(p.epfd, p.events, 0)
		return p.waited > 0 || p.waitErr != nil
	}
	return nil
}

// wait returns the ready events. With msec 0 it only looks; otherwise it
// lingers in epoll_wait when lingerPolicy allows it (see linger_linux.go),
// bounded by the ticks of lingerTicker (lingertick_linux.go), then parks
// until events arrive or msec passes (msec < 0: no limit).
func (p *Poller) wait(msec int) (int, error) {
	if p.ring != nil {
		return p.ringWait(msec)
	}
	if msec == 0 {
		return sys.EpollWait(p.epfd, p.events, 0)
	}
	lingered := false
	if (msec < 0 || msec > lingerMsec) && p.linger.mayLingerNow() && takeLingerSlot() {
		// The wait keeps the P (see lingerHoldsP); the next tick ends it,
		// so a goroutine woken meanwhile waits at most one tick.
		if err := p.ticker.start(); err != nil {
			releaseLingerSlot()
			return 0, err
		}
		began := lingerBegins()
		n, err := sys.EpollWaitHoldingP(p.epfd, p.events, -1)
		releaseLingerSlot()
		p.yieldAfterLinger(began)
		if err != nil || !p.ticker.expired(tickOnly(p.events[:n])) {
			return n, err
		}
		if err := p.ticker.stop(); err != nil {
			return 0, err
		}
		p.linger.expired(monoNow())
		refreshLingerSlots()
		lingered = true
	} else if err := p.ticker.stop(); err != nil {
		return 0, err
	}
	deadline := time.Time{}
	if msec > 0 {
		deadline = time.Now().Add(time.Duration(msec) * time.Millisecond)
	}
	if err := p.epollFile.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	p.waited, p.waitErr = 0, nil
	err := p.epollRaw.Read(p.waitReady)
	if lingered {
		p.linger.parked(monoNow(), p.waited)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return p.waited, p.waitErr
}

// dispatch handles the events of the last wait. Each registration's epoll data
// holds the operator's index (Fd) and generation (Pad); an event whose
// generation is not the operator's current one belongs to a registration that
// was detached or freed after the kernel queued it, and is dropped.
func (p *Poller) dispatch(n int) {
	if p.ring != nil {
		p.ringDispatch(n)
		return
	}
	for i := range p.events[:n] {
		ev := &p.events[i]
		if ev.Fd == wakeIndex {
			p.drainWake()
			continue
		}
		if ev.Fd == tickIndex {
			p.ticker.clear() // it only ends the wait
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
}

// drainWake resets the eventfd counter so the level-triggered wake-up stops.
func (p *Poller) drainWake() {
	sys.Read(p.wakefd, p.wakeBuf[:]) // EAGAIN: already drained
}

// notify adds to the eventfd counter. EAGAIN means the counter is full, so a
// wake-up is pending anyway.
func (p *Poller) notify() error {
	if p.ring != nil {
		return p.ring.notify()
	}
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
	if p.ring != nil {
		return p.ring.arm(op, next, registered)
	}
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
	if p.ring != nil {
		return p.ring.disarm(op)
	}
	err := sys.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, op.FD, nil)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EBADF) {
		return nil
	}
	return err
}

func (p *Poller) release() error {
	if p.ring != nil {
		return p.ring.close()
	}
	return errors.Join(sys.Close(p.ticker.fd), sys.Close(p.wakefd), p.epollFile.Close())
}
