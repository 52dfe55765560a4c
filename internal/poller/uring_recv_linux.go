package poller

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// TCP input without read system calls: while a Receiver (a connection on a
// TCP socket; see canReceive) has read interest, one multishot
// IORING_OP_RECV with IOSQE_BUFFER_SELECT is armed on its fd. The kernel
// receives whenever input arrives, into a buffer it takes from the poller's
// provided-buffer ring, and posts a completion; the poller hands the bytes
// to OnData, which copies them into the connection's input buffer, and gives
// the buffer back to the ring (on an incremental ring, once the kernel has
// filled it). So a busy ring reads many connections
// per io_uring_enter, and an idle connection holds no buffer: the ring's
// buffers are shared by all of a poller's connections.
//
// Completions:
//
//	res > 0, F_BUFFER      bytes: OnData(bytes, more: F_SOCK_NONEMPTY); the
//	                       buffer given back when its turn ended (at once on
//	                       a classic ring); a stream is switched to reads
//	res == 0               the peer's EOF: OnData(nil, nil) (some 6.1x
//	                       kernels also name a buffer, taken like any other)
//	res < 0                ECANCELED (our cancel), ENOBUFS (ring empty): nothing;
//	                       any other error: OnData(nil, err)
//	no F_MORE              the receive ended: armed again if op still wants
//	                       input and it ended on bytes or ENOBUFS; ReleaseFD
//
// Ownership: an armed receive is a holder of its owner's fd (HoldFD), taken
// when the SQE is written and given back (ReleaseFD) by its last
// completion. So the fd is never closed, nor its number reused, while the
// kernel holds a receive on it, and the owner is never freed before its
// last completion has found it. Pausing at the input limit (no read
// interest) cancels the receive (IORING_OP_ASYNC_CANCEL) and resuming arms
// a new one; completions of the cancelled one that carry bytes are still
// delivered, and its last one gives the hold back.
//
// One consumer at a time: after a cancel, nothing else takes the socket's
// input (a new receive, or a read for a stream) until the cancelled
// receive's last completion is in (uringOp.draining; drainedLocked then
// arms what op wants). The cancelled receive may be running on another
// thread when the cancel is issued (its task work runs on the thread that
// submitted it), and may then take one more chunk of input and post it
// after a receive armed at once had posted later bytes.
//
// While a receive owns a socket's input, nothing else reads it: a poll for
// writability that completes with an error or hang-up is reported to the
// owner (OnHangup) without OnReadable, and not armed again (ringPolled);
// the receive delivers the remaining bytes and the error or EOF in order.
// Reading there made two consumers of one socket, and after a peer's reset
// a read could hand over bytes the receive had taken but not yet posted.
//
// A detach (a close) cancels synchronously instead
// (IORING_REGISTER_SYNC_CANCEL: it returns when the kernel is done with the
// receive) and gives the hold back itself. The fd is then closed, and the
// close callbacks run, on the closing goroutine, as on epoll; waiting for
// the last completion would move them to the poller and after Close
// returns. The receive is marked dropped: its completions still in the
// ring only give their buffers back, and so do those of any receive of an
// earlier registration of the operator (floor), whose owner may be gone.

// Streams: a receive costs no system call, but its bytes are copied from
// the poller's buffer into the connection's, where a read(2) writes them
// straight into the connection's. For small messages the system call
// costs more (64 B x 1,000 closed loop: receives 9.5-10.0 µs/req, reads
// 10.8-10.9); for a stream the copy does (64 KiB x 10 stream echo: 2,742-
// 2,908 MB/s with receives, 3,936-4,230 with reads; epoll 3,408-4,081;
// interleaved, GOMAXPROCS=1, pinned). So a receiver whose owner reports its
// input as a stream (Receiver.Streaming, which a connection answers from
// how its read size has grown) is switched over to polls and reads, as
// under epoll: readStream cancels its receive and, once its last
// completion is in (draining), polls it for input; ringPolled arms a
// receive again once the owner says the stream ended. The switch is made
// on incremental rings only (6.15, see below): it came when its order of
// bytes rested on the ordering of multishot completions that 6.15 made
// sure of. The drain no longer needs that, so classic rings could switch
// too; not measured yet.
//
// Sizes of the provided-buffer ring, 1 MiB per poller either way, mapped
// outside the Go heap. A buffer is busy only from the kernel's receive to
// the end of its completion's callback (on an incremental ring: until the
// kernel has filled it and the last callback on its bytes returned).
//
// From 6.15 the ring is incremental (sys.BufRing): 16 buffers of 64 KiB,
// each shared by many small receives, and a stream takes up to 64 KiB per
// receive and completion. Incremental rings came in 6.12, but where a
// completion's bytes are is worked out from the order of the completions
// of all the receives sharing the ring, and before 6.15 (commit
// 687b2bae0eff, "io_uring: ensure deferred completions are flushed for
// multishot") a multishot receive that ended with bytes, as one does when
// the completion queue is full, could post its last completion after
// another receive's later bytes: one connection would get another's.
// Stable kernels that took the fix cannot be told apart from their
// version, so they keep the classic ring. The classic ring, 512 buffers of 2 KiB, gives a
// stream one completion, one receive in the kernel and one OnData per 2
// KiB: 64 KiB x 10 stream echo, GOMAXPROCS=1, pinned, 1,961 MB/s against
// epoll's 3,348 in the same run (bench/results/2026-12-06T221322Z-quick-
// uring-final); incremental, 2,844 against 3,379 (2026-12-07T081943Z). The ring also bounds how far past the
// input limit a connection's input can go (what the kernel received before
// the pause's cancel): with 1,024 of 4 KiB the flood fault test's copying
// echo grew the heap by 92 MiB of its 64 MiB budget, with 512 of 2 KiB by
// at most 46 in six runs.
const (
	recvBuffers      = 512
	recvBufferSize   = 2 << 10
	recvIncBuffers   = 16
	recvIncBufSize   = 64 << 10
	recvGroup        = 0
	incrementalMajor = 6
	incrementalMinor = 15
)

// streamReads is cleared by tests to keep receivers on receives whatever
// their input. Read when a poller opens.
var streamReads = true

// incrementalRings is cleared by tests to give a ring the classic buffers
// that a kernel before 6.15 gets. Read when a poller opens.
var incrementalRings = true

// setupReceive registers the provided-buffer ring. Multishot receive came
// in 6.0 and cannot be probed for, so the kernel's version is checked.
func (r *ring) setupReceive() error {
	if !kernelAtLeast(6, 0) {
		return os.NewSyscallError("io_uring: multishot receive needs Linux 6.0", unix.ENOTSUP)
	}
	if err := r.Supports(sys.UringOpRecv); err != nil {
		return err
	}
	if incrementalRings && kernelAtLeast(incrementalMajor, incrementalMinor) {
		// A kernel that refuses the flag (EINVAL) gets the classic ring.
		if bufs, err := r.RegisterBufRing(recvGroup, recvIncBuffers, recvIncBufSize, true); err == nil {
			r.bufs = bufs
			r.readsStreams = streamReads
			return nil
		}
	}
	bufs, err := r.RegisterBufRing(recvGroup, recvBuffers, recvBufferSize, false)
	if err != nil {
		return err
	}
	r.bufs = bufs
	return nil
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var maj, mnr int
	release := u.Release[:]
	i := 0
	for ; i < len(release) && release[i] >= '0' && release[i] <= '9'; i++ {
		maj = maj*10 + int(release[i]-'0')
	}
	if i < len(release) && release[i] == '.' {
		for i++; i < len(release) && release[i] >= '0' && release[i] <= '9'; i++ {
			mnr = mnr*10 + int(release[i]-'0')
		}
	}
	return maj > major || maj == major && mnr >= minor
}

// receives reports whether op takes its input from a receive now: decided
// when op registers (canReceive), and off while its input is a stream
// (readStream). Called with op.mu held.
func (r *ring) receives(op *FDOperator) bool { return op.uring.receiver && !op.uring.reading }

// canReceive reports whether op's fd may take its input from a multishot
// receive: a Receiver's TCP socket. Any other fd, unix sockets among them,
// is polled and read as under epoll.
//
// Unix sockets are left out because on them the kernel (6.18 here) can leave
// a multishot receive waiting after the peer has closed: a receive that had
// drained the socket was never completed with the EOF, and the reader
// waited for good. Under -race, TestAReceiverSeesTheEOFAfterAStream lost
// the EOF so about once in 100 to 3,000 one-MiB transfers on unix sockets,
// and never in 3,600 on TCP. The cause is not settled. A guess: a receive
// reads on at once only while the kernel reports input left in the socket,
// and TCP counts a received FIN in that report, AF_UNIX (which has made the
// report only in recent kernels) may not; but bytes and a close landing in
// one wake-up, tried alone, did not lose the EOF. cmd/uring-unix-eof shows
// the loss on a bare ring, without this package (1 in 3,000 unix transfers,
// none in 3,000 TCP ones, here); run it before giving unix sockets
// receives on a newer kernel.
func (r *ring) canReceive(op *FDOperator) bool {
	if _, ok := op.owner.(Receiver); !ok || r.bufs == nil {
		return false
	}
	proto, err := unix.GetsockoptInt(op.FD, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	return err == nil && proto == unix.IPPROTO_TCP // not a socket: err
}

// setReceiveLocked arms op's receive if next has read interest and cancels
// it if not. Called with op.mu and sqMu held.
func (r *ring) setReceiveLocked(op *FDOperator, next interest) error {
	if !r.receives(op) {
		return nil
	}
	want := next&interestRead != 0
	switch {
	case want && !op.uring.receiving:
		return r.receiveLocked(op)
	case !want && op.uring.receiving:
		return r.cancelReceiveLocked(op)
	}
	return nil
}

// receiveLocked queues a multishot receive on op's fd, holding the fd for
// it. An owner that is closing gets none: the SQE becomes a NOP. While a
// cancelled receive drains, nothing is queued: drained arms the receive
// then, if op still wants one. Called with op.mu and sqMu held.
func (r *ring) receiveLocked(op *FDOperator) error {
	if op.uring.draining {
		return nil
	}
	sqe, err := r.sqeLocked() // before the hold: a failure here holds nothing
	if err != nil {
		return err
	}
	if !op.owner.(Receiver).HoldFD() {
		sqe.Opcode = sys.UringOpNop
		sqe.UserData = ringWake << 56
		return nil
	}
	op.uring.recvSeq++
	sqe.Opcode = sys.UringOpRecv
	sqe.Fd = int32(op.FD)
	sqe.Ioprio = sys.UringRecvMultishot
	sqe.Flags = sys.UringSQEBufferSelect
	sqe.BufIndex = recvGroup
	sqe.UserData = userData(ringRecv, op.index, op.uring.recvSeq)
	op.uring.receiving = true
	op.uring.foreign = 0
	r.queued = append(r.queued, op)
	return nil
}

// cancelReceiveLocked queues the cancel of op's receive. Its last
// completion still arrives, and gives the hold back. Called with op.mu and
// sqMu held.
func (r *ring) cancelReceiveLocked(op *FDOperator) error {
	if err := r.cancelLocked(userData(ringRecv, op.index, op.uring.recvSeq)); err != nil {
		return err
	}
	op.uring.receiving = false
	op.uring.draining, op.uring.drainSeq = true, op.uring.recvSeq
	op.uring.recvSeq++
	return nil
}

// drainedLocked runs at the last completion of op's cancelled receive:
// the socket's input is free for the next consumer, a new receive or, for
// a stream, the read its poll starts. Called on the poller goroutine with
// op.mu held.
func (r *ring) drainedLocked(op *FDOperator) error {
	op.uring.draining = false
	if !op.registered {
		return nil
	}
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	if err := r.setReceiveLocked(op, op.interest); err != nil {
		return err
	}
	return r.repollLocked(op, op.interest)
}

// dropReceive cancels op's receive for a detach, waits until the kernel is
// done with it, and gives its hold back; see above. Where the synchronous
// cancel fails, it cancels the slow way and the last completion gives the
// hold back. The caller of a detach holds the fd itself (acquireFD, or a
// close's own hold), so this release never finalizes. Called with op.mu held.
func (r *ring) dropReceive(op *FDOperator) error {
	seq := op.uring.recvSeq
	if err := r.SyncCancel(userData(ringRecv, op.index, seq)); err != nil {
		r.sqMu.Lock()
		defer r.sqMu.Unlock()
		if err := r.cancelReceiveLocked(op); err != nil {
			return err
		}
		return r.submitLocked()
	}
	op.uring.receiving = false
	op.uring.dropped = seq
	op.uring.recvSeq++
	op.owner.(Receiver).ReleaseFD()
	return nil
}

// readStream turns op, whose receive seq has just delivered input that
// its owner calls a stream, over to polls and reads (see "Streams" above):
// it cancels the receive, whose last completion gives its hold back, and
// polls op for input. Called on the poller goroutine.
func (r *ring) readStream(op *FDOperator, seq uint32) error {
	op.mu.Lock()
	defer op.mu.Unlock()
	if !op.registered || !op.uring.receiving || op.uring.recvSeq != seq {
		return nil // paused, detached or switched since
	}
	op.uring.reading = true
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	if err := r.cancelReceiveLocked(op); err != nil {
		return err
	}
	return r.repollLocked(op, op.interest)
}

// receiveAgainLocked turns op, read while its input was a stream, back to
// receives: it arms a receive if op has read interest, and the caller polls
// op for what else it wants. Called on the poller goroutine with op.mu held.
func (r *ring) receiveAgainLocked(op *FDOperator) error {
	op.uring.reading = false
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	if err := r.setReceiveLocked(op, op.interest); err != nil {
		return err
	}
	return r.repollLocked(op, op.interest)
}

// ringReceived handles one completion of op's receive; see the table above.
// The receive's hold keeps op's owner from finalizing, so op is not freed,
// nor its owner replaced, before this runs for the last completion; a dead
// receive's completion (dropped, or of an earlier owner) only gives its
// buffer back.
func (p *Poller) ringReceived(op *FDOperator, cqe *sys.UringCQE) {
	r := p.ring
	seq := uint32(cqe.UserData)
	op.mu.Lock() // also pairs with the Control that armed the receive: its owner is seen
	live := int32(seq-op.uring.floor) >= 0 && seq != op.uring.dropped
	current := op.uring.receiving && op.uring.recvSeq == seq // not cancelled yet: readStream may switch it
	moveHome := current && cqe.Flags&sys.UringCQEFMore != 0 && r.awayFromHome(op)
	op.mu.Unlock()
	var rcv Receiver
	if live {
		rcv, _ = op.owner.(Receiver)
	}
	if cqe.Flags&sys.UringCQEFBuffer != 0 {
		// Taken even when nobody wants the bytes: see sys.BufRing.Take.
		data, bid, done := r.bufs.Take(cqe.Flags, int(cqe.Res))
		if rcv != nil && len(data) > 0 {
			rcv.OnData(p, data, cqe.Flags&sys.UringCQEFSockNonempty != 0, nil)
		}
		if done {
			r.bufs.Provide(bid)
		}
		if current && rcv != nil && len(data) > 0 && r.readsStreams && rcv.Streaming(false) {
			if err := r.readStream(op, seq); err != nil {
				p.hangUp(op) // input stopped: let the owner see it as a failure
			}
		}
	}
	if rcv != nil && cqe.Res <= 0 {
		switch errno := syscall.Errno(-cqe.Res); {
		case cqe.Res == 0:
			rcv.OnData(p, nil, false, nil)
		case errno == unix.ECANCELED || errno == unix.ENOBUFS:
		case cqe.Res < 0:
			rcv.OnData(p, nil, false, os.NewSyscallError("recv", errno))
		}
	}
	if moveHome && rcv != nil {
		if err := r.moveHome(op, seq); err != nil {
			p.hangUp(op) // input stopped: let the owner see it as a failure
		}
	}
	if cqe.Flags&sys.UringCQEFMore != 0 || rcv == nil {
		return
	}
	op.mu.Lock()
	if seq == op.uring.dropped {
		// A detach dropped the receive after we looked, and gave its hold
		// back already.
		op.mu.Unlock()
		return
	}
	var err error
	if op.uring.receiving && op.uring.recvSeq == seq {
		op.uring.receiving = false
		// It ended on its own: the kernel stops a multishot receive when
		// the ring ran out of buffers (ENOBUFS; the ones this batch gave
		// back are there again) or its completions overflowed.
		if op.registered && op.interest&interestRead != 0 && (cqe.Res > 0 || cqe.Res == -int32(unix.ENOBUFS)) {
			r.sqMu.Lock()
			err = r.receiveLocked(op)
			r.sqMu.Unlock()
		}
	} else if op.uring.draining && op.uring.drainSeq == seq {
		err = r.drainedLocked(op)
	}
	op.mu.Unlock()
	rcv.ReleaseFD()
	if err != nil {
		p.hangUp(op) // input stopped: let the owner see it as a failure
	}
}
