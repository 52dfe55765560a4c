package poller

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// The epoll poller lingers in epoll_wait with no timeout, and a periodic
// timer in its own epoll set bounds the linger instead. A wait with a
// timeout arms and cancels a kernel timer on every sleep, and in a virtual
// machine programming that timer is a trap to the host: at 10k req/s on
// 1,000 connections (bench/, GOMAXPROCS=1, pinned) a 1 ms timed linger cost
// 21.8 µs of server CPU per request against 17.9 with this, where gnet,
// which blocks with no bound at all, took 17.2. The timer ticks once per
// lingerMsec while the poller lingers, whatever the request rate, and is
// stopped when the poller parks, so an idle poller costs nothing.
//
// A tick ends the wait it interrupts, and the loop yields after it like
// after any batch, so a goroutine that became runnable while the poller held
// the P waits at most one tick, as it did for the timed linger. A tick that
// finds no other event since the previous tick means a whole period passed
// idle: the linger has expired and the poller parks.

// lingerHoldsP: the linger's wait is a raw system call, which keeps the P.
// Through Syscall6 the scheduler would see a thread blocked in the kernel,
// and sysmon, once it runs every 20 µs (as it does after any park), takes
// the P from any wait that spans two of its looks, hands it to another
// thread that finds nothing to do, and because it took one stays at 20 µs.
// At low rates, where a linger lasts hundreds of µs, that loop held in
// about half the runs: at 2k req/s over 100 connections 80-100 µs of CPU
// per request and 7-9 context switches, against 42-60 µs and 1.5 without
// it. The tick bounds the hold as sysmon would have: a goroutine woken
// while the poller lingers runs at the next tick's yield, at most 1 ms on,
// and the runtime's preemption signal still ends the wait at once when a
// stop-the-world needs the P.

// tickIndex is the epoll data of the linger timer; operators have indexes >= 0.
const tickIndex = -2

// lingerTicker is the periodic timer that bounds a linger. Owned by the
// poller goroutine, except fd, which release closes. A tick costs a wake-up
// and a read of the timerfd, once per lingerMsec and not per request.
type lingerTicker struct {
	fd      int  // a timerfd, level-triggered in the poller's epoll set
	running bool // the timer is armed
	buf     [8]byte
	// busy records events other than ticks since the last tick.
	busy bool
}

// create makes the timer, stopped. The io_uring engine polls it through
// its ring (uring_linger_linux.go); open adds it to an epoll set.
func (t *lingerTicker) create() error {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("timerfd_create", err)
	}
	t.fd = fd
	return nil
}

// open creates the timer, stopped, and adds it to epfd.
func (t *lingerTicker) open(epfd int) error {
	if err := t.create(); err != nil {
		return err
	}
	// Level-triggered, and read at each tick: a timerfd whose expiry count
	// is not read wakes an edge-triggered waiter once, never again.
	ev := sys.EpollEvent{Events: unix.EPOLLIN, Fd: tickIndex}
	if err := sys.EpollCtl(epfd, unix.EPOLL_CTL_ADD, t.fd, &ev); err != nil {
		sys.Close(t.fd)
		return err
	}
	return nil
}

// start arms the timer to tick every lingerMsec, if it is not running.
func (t *lingerTicker) start() error {
	if t.running {
		return nil
	}
	period := unix.NsecToTimespec(lingerMsec * 1e6)
	if err := t.set(unix.ItimerSpec{Interval: period, Value: period}); err != nil {
		return err
	}
	t.running, t.busy = true, false
	return nil
}

// stop disarms the timer and clears a tick not yet read, so that a parked
// poller is not woken by it.
func (t *lingerTicker) stop() error {
	if !t.running {
		return nil
	}
	t.running = false
	if err := t.set(unix.ItimerSpec{}); err != nil {
		return err
	}
	t.clear()
	return nil
}

// clear reads the expiry count, which ends the level-triggered report.
// EAGAIN means there was none.
func (t *lingerTicker) clear() {
	sys.Read(t.fd, t.buf[:])
}

func (t *lingerTicker) set(spec unix.ItimerSpec) error {
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		return os.NewSyscallError("timerfd_settime", err)
	}
	return nil
}

// expired is told what a linger's wait returned, a tick alone (tickOnly)
// or anything else, and reports whether the linger is over: a tick alone
// after a whole period without other events.
func (t *lingerTicker) expired(tickOnly bool) bool {
	if tickOnly {
		expired := !t.busy
		t.busy = false
		return expired
	}
	t.busy = true
	return false
}

// tickOnly reports whether the events of an epoll wait are the tick alone.
func tickOnly(events []sys.EpollEvent) bool {
	return len(events) == 1 && events[0].Fd == tickIndex
}
