package poller

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// The io_uring engine (EngineIOURing). The Poller type, its loop and the
// operators' callbacks are the epoll engine's; only the kernel interface
// differs:
//
//   - Readiness is a one-shot IORING_OP_POLL_ADD per registration, armed
//     again after each callback. A poll armed on a socket that is still
//     ready completes at once, so the registration behaves level-triggered,
//     like epoll's: a handler that stops early loses nothing, and every
//     OnRead/OnWrite/Inputs path works unchanged. (A multishot poll would
//     be edge-triggered, and lose a partly drained socket.)
//   - An interest change or a detach cancels the armed poll
//     (IORING_OP_ASYNC_CANCEL) and arms a new one. Every arm takes a new
//     sequence number, carried in the completion's user_data, so a
//     completion of a poll that was replaced, removed or belongs to a freed
//     operator is dropped, the way a stale generation is under epoll.
//   - The submission queue is shared: Control submits from any goroutine,
//     the poller queues its re-arms and submits them once per loop. sqMu
//     guards it. The completion queue is the poller goroutine's alone.
//   - An idle poller does not block a thread: an eventfd registered with the
//     ring (IORING_REGISTER_EVENTFD) is signalled on each completion while
//     the poller sleeps, and the poller parks on it through the Go runtime's
//     poller, as the epoll engine parks on its epoll fd. While busy the
//     signal is turned off (IORING_CQ_EVENTFD_DISABLED), so a busy ring
//     costs no eventfd writes. Trigger submits a NOP, whose completion wakes
//     both a lingering io_uring_enter and a parked poller.
//
// The fd of an armed poll: the kernel resolves it when the SQE is
// submitted and then holds the file, not the number. A poll queued by the
// poller is submitted before its fd can be closed, because the owner
// detaches before closing and disarm submits the queue, with the removal
// after it, before it returns (Control holds op.mu throughout).
//
// Kernel floor: 6.0, for the multishot receive and the synchronous cancel
// (uring_recv_linux.go); the
// rest is older: provided-buffer rings 5.19, IORING_SETUP_SUBMIT_ALL 5.18,
// IORING_CQ_EVENTFD_DISABLED 5.8,
// the probe 5.6. On an older kernel setup fails and the poller falls back
// to epoll (openEngine).

// Ring sizes. Submissions come in small batches (the re-arms of one
// dispatch, at most maxEvents); completions may pile up while the poller
// runs callbacks, and the kernel keeps what overflows (IORING_FEAT_NODROP).
const (
	ringSQEntries = 256
	ringCQEntries = 4096
)

// The user_data of an SQE, returned in its completion:
//
//	bits 56–63  kind (ringWake, ringPoll, ringRecv, ringCancel, ringTick)
//	bits 32–55  the operator's index in the table
//	bits  0–31  the operator's arm sequence (uringOp.seq)
const (
	ringWake   uint64 = 1
	ringPoll   uint64 = 2
	ringRecv   uint64 = 3 // a multishot receive (uring_recv_linux.go)
	ringCancel uint64 = 4

	ringIndexMask = 1<<24 - 1
)

// userData packs the fields of a user_data.
func userData(kind uint64, index int32, seq uint32) uint64 {
	return kind<<56 | (uint64(index)&ringIndexMask)<<32 | uint64(seq)
}

// uringOp is the io_uring state of an operator. Guarded by FDOperator.mu.
type uringOp struct {
	seq     uint32   // the sequence of the last poll; a completion with another is stale
	polling bool     // a poll with seq is armed or queued
	armed   interest // what that poll waits for

	receiver  bool   // input comes from a receive, not a poll; set at registration
	reading   bool   // a receiver whose input is a stream: polled and read meanwhile
	recvSeq   uint32 // the sequence of the last receive
	receiving bool   // a receive with recvSeq is armed or queued
	// draining: a cancelled receive, drainSeq, has yet to post its last
	// completion. No other consumer of the socket's input starts before
	// it (see "One consumer at a time" in uring_recv_linux.go).
	draining bool
	drainSeq uint32
	// home is the ring's home when the receive was submitted, 0 when
	// another thread submitted it (uring_home_linux.go); written under
	// sqMu, read by the poller.
	home atomic.Uint32
	// foreign counts the completions of the current receive seen while
	// it was not at home; the poller moves it after a few.
	foreign uint8
	// The receives of earlier registrations (sequences before floor) and
	// the one a detach cancelled synchronously (dropped) are dead: their
	// completions only give their buffers back.
	floor, dropped uint32
}

// errRingFull is returned when the submission queue stays full after a submit.
var errRingFull = errors.New("netpoll: io_uring submission queue full")

// ring is the io_uring state of a Poller (backend.ring).
type ring struct {
	*sys.Ring
	// Set by openRing; closed by close.
	eventfd   int
	eventFile *os.File        // owns eventfd
	eventRaw  syscall.RawConn // parks the idle poller on the runtime's poller
	waitReady func(uintptr) bool

	// sqMu guards the submission queue. Lock order: FDOperator.mu, then sqMu.
	sqMu sync.Mutex
	// Guarded by sqMu.
	sqTail   uint32        // entries written; published to the kernel by submitLocked
	queued   []*FDOperator // operators whose receives are queued, not submitted
	byPoller bool          // the poller's flush is submitting (stamp queued with home)

	// The poller's thread (uring_home_linux.go). Owned by the poller
	// goroutine; home is also read by submitLocked while byPoller is set.
	tid       int    // as last seen
	home      uint32 // changes with tid; never 0
	homeLoops int    // waits since tid was last looked at
	homeAt    int64  // when it was, monoNow

	// Owned by the poller goroutine.
	cqes     []sys.UringCQE // the completions of the last wait
	eventBuf [8]byte
	bufs     *sys.BufRing // the provided buffers of the receives; set by setup
	// readsStreams: receivers whose input is a stream are read instead
	// (uring_recv_linux.go); set by setup, on incremental rings only.
	readsStreams bool
	// ticker bounds a linger (uring_linger_linux.go); tickPolled says a
	// poll of its timerfd is armed.
	ticker     lingerTicker
	tickPolled bool
}

// openRing sets up an io_uring poller. An error means the kernel refused a
// part of it; openEngine then falls back to epoll.
//
// IORING_SETUP_COOP_TASKRUN: the kernel posts a poll-driven completion (a
// receive, a poll) from task work on the thread that submitted it, and by
// default interrupts that thread if it is running. Our submitters are Go
// threads that make system calls all the time under load, so the work
// runs at their next kernel entry without the interrupt; a sleeping thread
// is still woken. Measured at 64 B x 1,000 (GOMAXPROCS=1, pinned): 17.0
// µs/req without it (epoll 11.0 in the same run,
// bench/results/2026-12-06T211506Z-quick-uring-nocoop) against 15.9 with
// it (epoll 13.4, bench/results/2026-12-06T214106Z-quick-uring); the
// machine was shared, so compare within a run.
func (p *Poller) openRing() error {
	rg, err := sys.UringSetup(ringSQEntries, ringCQEntries, sys.UringSetupSubmitAll|sys.UringSetupCoopTaskrun)
	if err != nil {
		return err
	}
	r := &ring{Ring: rg, eventfd: -1}
	r.ticker.fd = -1
	if err := r.setup(); err != nil {
		r.close()
		return err
	}
	p.ring = r
	return nil
}

// setup checks the features the engine needs and registers the eventfd.
func (r *ring) setup() error {
	if err := r.Supports(sys.UringOpNop, sys.UringOpPollAdd, sys.UringOpAsyncCancel); err != nil {
		return err
	}
	fd, err := sys.Eventfd()
	if err != nil {
		return err
	}
	r.eventfd = fd
	r.eventFile = os.NewFile(uintptr(fd), "io_uring eventfd")
	if r.eventRaw, err = r.eventFile.SyscallConn(); err != nil {
		return err
	}
	if err := r.RegisterEventfd(fd); err != nil {
		return err
	}
	if err := r.setupReceive(); err != nil {
		return err
	}
	if err := r.ticker.create(); err != nil {
		return err
	}
	atomic.StoreUint32(r.CQFlags, sys.UringCQEventfdDisabled)
	r.cqes = make([]sys.UringCQE, maxEvents)
	// Made once: a closure made per wait would allocate.
	r.waitReady = func(uintptr) bool {
		sys.Read(r.eventfd, r.eventBuf[:]) // reset the counter; EAGAIN: nothing signalled
		return r.ready()
	}
	return nil
}

// close closes the ring (the kernel cancels what is in flight) and the eventfd.
func (r *ring) close() error {
	var err error
	if r.eventFile != nil {
		err = r.eventFile.Close()
	} else if r.eventfd >= 0 {
		err = sys.Close(r.eventfd)
	}
	if r.ticker.fd >= 0 {
		err = errors.Join(err, sys.Close(r.ticker.fd))
	}
	err = errors.Join(err, r.Ring.Close())
	if r.bufs != nil {
		r.bufs.Unmap() // after the ring: the kernel no longer writes into them
	}
	return err
}

// sqeLocked returns a zeroed SQE at the tail of the queue, submitting the
// queue first if it is full. Called with sqMu held.
func (r *ring) sqeLocked() (*sys.UringSQE, error) {
	if r.sqTail-atomic.LoadUint32(r.SQHead) >= r.SQEntries {
		if err := r.submitLocked(); err != nil {
			return nil, err
		}
		if r.sqTail-atomic.LoadUint32(r.SQHead) >= r.SQEntries {
			return nil, errRingFull
		}
	}
	sqe := &r.SQEs[r.sqTail&r.SQMask]
	*sqe = sys.UringSQE{}
	r.sqTail++
	return sqe, nil
}

// submitLocked publishes the written SQEs and has the kernel take them all.
// EBUSY and EAGAIN (completions backed up in the overflow list) leave them
// queued for the next submit. Called with sqMu held.
func (r *ring) submitLocked() error {
	r.stampQueuedLocked()
	atomic.StoreUint32(r.SQTail, r.sqTail) // after the SQE stores: a release
	for {
		pending := r.sqTail - atomic.LoadUint32(r.SQHead)
		if pending == 0 {
			return nil
		}
		if _, err := r.Enter(pending, 0, 0); err != nil {
			if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN) {
				return nil
			}
			return err
		}
	}
}

// flush submits the re-arms the poller queued.
func (r *ring) flush() error {
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	if r.sqTail == atomic.LoadUint32(r.SQHead) {
		return nil
	}
	r.byPoller = true
	defer func() { r.byPoller = false }()
	return r.submitLocked()
}

// pollLocked queues a one-shot poll of op's fd for in, under a new
// sequence. Called with op.mu and sqMu held.
func (r *ring) pollLocked(op *FDOperator, in interest) error {
	sqe, err := r.sqeLocked()
	if err != nil {
		return err
	}
	op.uring.seq++
	sqe.Opcode = sys.UringOpPollAdd
	sqe.Fd = int32(op.FD)
	// EPOLLIN, EPOLLOUT, EPOLLRDHUP are the poll bits. Unlike epoll, a poll
	// reports errors and hang-ups only when asked.
	sqe.OpFlags = epollEvents(in) | unix.EPOLLERR | unix.EPOLLHUP
	sqe.UserData = userData(ringPoll, op.index, op.uring.seq)
	op.uring.polling, op.uring.armed = true, in
	return nil
}

// removeLocked queues the removal of op's armed poll; its completion, and
// the removed poll's, are dropped. Called with op.mu and sqMu held.
func (r *ring) removeLocked(op *FDOperator) error {
	if err := r.cancelLocked(userData(ringPoll, op.index, op.uring.seq)); err != nil {
		return err
	}
	op.uring.polling = false
	op.uring.seq++
	return nil
}

// cancelLocked queues an IORING_OP_ASYNC_CANCEL of the request whose
// user_data is target; the cancel's own completion says nothing the
// sequences do not, and is dropped. Called with sqMu held.
func (r *ring) cancelLocked(target uint64) error {
	sqe, err := r.sqeLocked()
	if err != nil {
		return err
	}
	sqe.Opcode = sys.UringOpAsyncCancel
	sqe.Fd = -1
	sqe.Addr = target
	sqe.UserData = ringCancel << 56
	return nil
}

// pollFor returns the interest op's poll must wait for under interest in,
// and whether op needs a poll at all. A Receiver with read interest has its
// input, errors and EOF from its receive: it is polled only for writing.
// Any other registration is polled, an empty interest for errors and
// hang-ups, as epoll reports them.
func (r *ring) pollFor(op *FDOperator, in interest) (interest, bool) {
	if in&interestRead != 0 && r.receives(op) {
		return interestWrite, in&interestWrite != 0
	}
	if op.uring.draining {
		in &^= interestRead // no read before the cancelled receive's last completion
	}
	return in, true
}

// arm brings op's receive and poll in line with next and submits at once:
// the caller may close the fd soon after. A poll that already waits for the
// right thing stays. Called with op.mu held.
func (r *ring) arm(op *FDOperator, next interest, registered bool) error {
	if !registered {
		op.uring.floor = op.uring.recvSeq + 1 // a new owner, maybe
		op.uring.receiver = r.canReceive(op)
		op.uring.reading = false
		op.uring.draining = false // an earlier owner's receive is dead (floor)
	}
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	if err := r.setReceiveLocked(op, next); err != nil {
		return err
	}
	if err := r.repollLocked(op, next); err != nil {
		return err
	}
	return r.submitLocked()
}

// repollLocked brings op's poll in line with interest in: a poll that
// already waits for the right thing stays. Called with op.mu and sqMu held.
func (r *ring) repollLocked(op *FDOperator, in interest) error {
	want, need := r.pollFor(op, in)
	if op.uring.polling && (!need || op.uring.armed != want) {
		if err := r.removeLocked(op); err != nil {
			return err
		}
	}
	if need && !op.uring.polling {
		return r.pollLocked(op, want)
	}
	return nil
}

// disarm removes op's poll and cancels its receive. The queue is submitted
// before it returns, so a re-arm the poller queued reaches the kernel while
// the fd is still open, and is removed right after. The receive is
// cancelled synchronously (dropReceive). Called with op.mu held.
func (r *ring) disarm(op *FDOperator) error {
	if !op.uring.polling && !op.uring.receiving {
		return nil
	}
	r.sqMu.Lock()
	var err error
	if op.uring.polling {
		err = r.removeLocked(op)
	}
	if err == nil {
		err = r.submitLocked() // also a receive still queued: it must reach the kernel to be cancelled
	}
	r.sqMu.Unlock()
	if err != nil || !op.uring.receiving {
		return err
	}
	return r.dropReceive(op)
}

// notify submits a NOP: its completion ends a lingering io_uring_enter and
// signals the eventfd a parked poller waits on.
func (r *ring) notify() error {
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	sqe, err := r.sqeLocked()
	if err != nil {
		return err
	}
	sqe.Opcode = sys.UringOpNop
	sqe.UserData = ringWake << 56
	return r.submitLocked()
}

// ready reports whether completions wait in the ring or its overflow list.
func (r *ring) ready() bool {
	return atomic.LoadUint32(r.CQTail) != atomic.LoadUint32(r.CQHead) ||
		atomic.LoadUint32(r.SQFlags)&sys.UringSQCQOverflow != 0
}

// reap moves up to maxEvents completions out of the ring into r.cqes, so the
// kernel may reuse their slots while the callbacks run.
func (r *ring) reap() (int, error) {
	head, tail := atomic.LoadUint32(r.CQHead), atomic.LoadUint32(r.CQTail)
	if head == tail && atomic.LoadUint32(r.SQFlags)&sys.UringSQCQOverflow != 0 {
		// The kernel moves overflowed completions in when asked for events.
		if _, err := r.Enter(0, 0, sys.UringEnterGetEvents); err != nil {
			return 0, err
		}
		tail = atomic.LoadUint32(r.CQTail)
	}
	n := min(int(tail-head), len(r.cqes))
	for i := range n {
		r.cqes[i] = r.CQEs[(head+uint32(i))&r.CQMask]
	}
	atomic.StoreUint32(r.CQHead, head+uint32(n))
	return n, nil
}

// ringWait is wait for the io_uring engine: submit the queued re-arms, take
// the completions, and when there are none and msec allows, linger in
// io_uring_enter until a tick finds it idle when lingerPolicy lets it
// (linger_linux.go, uring_linger_linux.go; as wait in epoll_linux.go does),
// then park.
func (p *Poller) ringWait(msec int) (int, error) {
	r := p.ring
	r.checkHome(false)
	if err := r.flush(); err != nil {
		return 0, err
	}
	if n, err := r.reap(); n > 0 || err != nil || msec == 0 {
		return n, err
	}
	lingered := false
	if (msec < 0 || msec > lingerMsec) && p.linger.mayLingerNow() && takeLingerSlot() {
		if err := r.lingerStart(); err != nil {
			releaseLingerSlot()
			return 0, err
		}
		began := lingerBegins()
		_, err := r.WaitHoldingP() // see lingerHoldsP
		releaseLingerSlot()
		p.yieldAfterLinger(began)
		if err != nil {
			return 0, err
		}
		n, err := r.reap()
		if err != nil || !r.ticker.expired(r.tickOnly(n)) {
			return n, err
		}
		r.ticked() // its completion is taken here, not dispatched
		if err := r.ticker.stop(); err != nil {
			return 0, err
		}
		p.linger.expired(monoNow())
		refreshLingerSlots()
		lingered = true
	} else if err := r.ticker.stop(); err != nil {
		return 0, err
	}
	n, err := r.park(msec)
	if lingered {
		p.linger.parked(monoNow(), n)
	}
	return n, err
}

// park waits on the eventfd through the runtime's poller until a completion
// arrives or msec passes (msec < 0: no limit). The eventfd is signalled only
// while the flag is clear; ready looks at the ring after clearing it, so a
// completion posted just before is not missed.
func (r *ring) park(msec int) (int, error) {
	atomic.AndUint32(r.CQFlags, ^uint32(sys.UringCQEventfdDisabled))
	defer atomic.OrUint32(r.CQFlags, sys.UringCQEventfdDisabled)
	deadline := time.Time{}
	if msec > 0 {
		deadline = time.Now().Add(time.Duration(msec) * time.Millisecond)
	}
	if err := r.eventFile.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	err := r.eventRaw.Read(r.waitReady)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	r.checkHome(true) // the poller may have woken on another thread
	return r.reap()
}

// ringDispatch handles the completions of the last wait. Only polls and
// receives carry events; a NOP's woke the poller, a cancel's says nothing
// the sequences do not.
func (p *Poller) ringDispatch(n int) {
	for i := range p.ring.cqes[:n] {
		cqe := &p.ring.cqes[i]
		kind := cqe.UserData >> 56
		if kind != ringPoll && kind != ringRecv {
			if kind == ringTick {
				p.ring.ticked() // it only ends the wait
			}
			continue
		}
		op := p.ops.get(int32(cqe.UserData >> 32 & ringIndexMask))
		if op == nil {
			continue
		}
		if kind == ringRecv {
			p.ringReceived(op, cqe)
			continue
		}
		p.ringPolled(op, uint32(cqe.UserData), cqe.Res)
	}
}

// ringPolled runs op's callbacks for a completed poll of sequence seq, then
// arms the next poll, which the next wait submits: the level-triggered
// emulation. res is the ready mask or a negative errno.
func (p *Poller) ringPolled(op *FDOperator, seq uint32, res int32) {
	op.mu.Lock()
	if !op.uring.polling || op.uring.seq != seq || !op.registered {
		op.mu.Unlock() // replaced, removed, or detached: stale
		return
	}
	op.uring.polling = false
	gen, armed := op.gen.Load(), op.uring.armed
	// Only what was asked for, and the errors epoll always reports: the
	// kernel may add EPOLLRDHUP to a poll for writing, which epoll would
	// not report, and the connection would take for its peer's EOF.
	events := uint32(res) & (epollEvents(armed) | unix.EPOLLERR | unix.EPOLLHUP)
	if res < 0 {
		events = unix.EPOLLERR // the poll itself failed: report it as a socket error
	}
	readable, hup := events&(unix.EPOLLIN|hupEvents) != 0, events&hupEvents != 0
	received := p.ring.receives(op) || op.uring.draining
	if received {
		// The receive owns the socket's input (a poll here waits for
		// writability, and reports an error or hang-up too). A read for
		// that could take bytes the receive has not posted yet and deliver
		// them first; the receive ends with the remaining bytes and the
		// error or EOF itself. The owner hears of the hang-up (its writer).
		readable = false
		if hup {
			// Nor is the op polled again (below): the poll would complete
			// at once, level-triggered. Its write interest goes, as
			// onWritable's would, before the writer is woken: the writer
			// asks again (Control) if it must still wait, and that polls.
			op.interest &^= interestWrite
		}
	}
	op.mu.Unlock()

	p.handle(op, gen, readable, events&unix.EPOLLOUT != 0, hup)

	op.mu.Lock()
	var err error
	if op.registered && op.gen.Load() == gen {
		if op.uring.reading && !op.owner.(Receiver).Streaming(true) {
			err = p.ring.receiveAgainLocked(op) // the stream ended
		}
		if want, need := p.ring.pollFor(op, op.interest); err == nil && need && !op.uring.polling && !(received && hup) {
			p.ring.sqMu.Lock()
			err = p.ring.pollLocked(op, want)
			p.ring.sqMu.Unlock()
		}
	}
	op.mu.Unlock()
	if err != nil {
		p.hangUp(op) // not polled any more: let the owner see it as a failure
	}
}
