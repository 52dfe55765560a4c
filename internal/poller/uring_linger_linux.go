package poller

import (
	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// The io_uring engine lingers as the epoll engine does (lingertick_linux.go):
// io_uring_enter waits for one completion with no timeout, and a poll of
// the linger timerfd, armed in the ring, completes at each tick. A timeout
// on each io_uring_enter would arm and cancel a kernel timer on every
// sleep, which is what the timer saves.

// ringTick is the user_data kind of the linger timer's poll; the other
// kinds are in uring_linux.go.
const ringTick uint64 = 5

// lingerStart starts the linger timer and arms a poll of it, unless one is
// armed already (a poll left armed while the timer was stopped completes at
// its next tick).
func (r *ring) lingerStart() error {
	if err := r.ticker.start(); err != nil {
		return err
	}
	if r.tickPolled {
		return nil
	}
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	sqe, err := r.sqeLocked()
	if err != nil {
		return err
	}
	sqe.Opcode = sys.UringOpPollAdd
	sqe.Fd = int32(r.ticker.fd)
	sqe.OpFlags = unix.EPOLLIN
	sqe.UserData = ringTick << 56
	r.tickPolled = true
	return r.submitLocked()
}

// tickOnly reports whether the n completions just reaped are the tick's alone.
func (r *ring) tickOnly(n int) bool {
	return n == 1 && r.cqes[0].UserData>>56 == ringTick
}

// ticked takes the tick's completion: the poll is spent, and the timer's
// expiry count is read so that the next poll waits for the next tick.
func (r *ring) ticked() {
	r.tickPolled = false
	r.ticker.clear()
}
