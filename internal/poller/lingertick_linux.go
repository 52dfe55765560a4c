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
// which blocks with no bound at all, took 17.2. The timer ticks every
// lingerMsec while the poller lingers (slower while it is busy, below), and
// is stopped when the poller parks, so an idle poller costs nothing.
//
// A tick ends the wait it interrupts, and the loop yields after it like
// after any batch, so a goroutine that became runnable while the poller held
// the P waits at most one tick, as it did for the timed linger. A tick that
// finds no other event since the previous tick means a whole period passed
// idle: the linger has expired and the poller parks.
//
// A tick is not free: in this VM each costs 10-20 µs of CPU (the timer's
// interrupt, the wake-up, the read), and at 10k req/s on 1,000 connections
// most ticks wake a sleeping poller. While events keep coming they end the
// lingers themselves, and the ticks bound nothing. So once lingerBusyTicks
// ticks in a row have found events since the previous one, the timer slows
// to lingerSlowMsec; it starts fast again at the next linger after a park.
// The price: when the traffic stops, the poller lingers one or two slow
// periods before it parks, and a goroutine woken meanwhile may wait up to
// lingerSlowMsec for the P. Measured (bench/, 64 B, GOMAXPROCS=1, pinned, 3
// interleaved rounds): at 10k req/s on 1,000 connections the server's reads
// fell from 1.09 to 1.03 a request (ticks from 900 to 300 a second), its CPU
// from 17.4-19.0 to 16.4-17.0 µs a request (gnet 16.2-16.4), and at 25k req/s
// its p90 from 41-52 to 33-48 µs.

// lingerHoldsP: the linger's wait is a raw system call, which keeps the P.
// Through Syscall6 the scheduler would see a thread blocked in the kernel,
// and sysmon, once it runs every 20 µs (as it does after any park), takes
// the P from any wait that spans two of its looks, hands it to another
// thread that finds nothing to do, and because it took one stays at 20 µs.
// At low rates, where a linger lasts hundreds of µs, that loop held in
// about half the runs: at 2k req/s over 100 connections 80-100 µs of CPU
// per request and 7-9 context switches, against 42-60 µs and 1.5 without
// it. The tick bounds the hold as sysmon would have: a goroutine woken
// while the poller lingers runs at the next tick's yield, at most one tick
// (1 ms, or lingerSlowMsec while the poller is busy) on, and the runtime's
// preemption signal still ends the wait at once when a stop-the-world needs
// the P.

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
	// busyTicks counts the ticks in a row that found the poller busy since
	// the timer started; at lingerBusyTicks it slows down.
	busyTicks int
}

const (
	// lingerBusyTicks busy ticks in a row slow the timer to lingerSlowMsec.
	lingerBusyTicks = 4
	lingerSlowMsec  = 4
)

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
	if err := t.setPeriod(lingerMsec); err != nil {
		return err
	}
	t.running, t.busy, t.busyTicks = true, false, 0
	return nil
}

// setPeriod makes the timer tick every msec milliseconds from now.
func (t *lingerTicker) setPeriod(msec int64) error {
	period := unix.NsecToTimespec(msec * 1e6)
	return t.set(unix.ItimerSpec{Interval: period, Value: period})
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
// after a whole period without other events. The lingerBusyTicks-th tick
// in a row that is not, slows the timer down.
func (t *lingerTicker) expired(tickOnly bool) bool {
	if !tickOnly {
		t.busy = true
		return false
	}
	if !t.busy {
		return true
	}
	t.busy = false
	t.busyTicks++
	if t.busyTicks == lingerBusyTicks {
		// A timer that cannot slow down keeps ticking fast: no harm done.
		_ = t.setPeriod(lingerSlowMsec)
	}
	return false
}

// tickOnly reports whether the events of an epoll wait are the tick alone.
func tickOnly(events []sys.EpollEvent) bool {
	return len(events) == 1 && events[0].Fd == tickIndex
}
