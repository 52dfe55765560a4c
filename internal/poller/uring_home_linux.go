package poller

import (
	"time"

	"golang.org/x/sys/unix"
)

// A receive's home thread. The kernel posts a receive's completions from
// task work on the thread that submitted it, and wakes that thread for it
// when it sleeps (TestAReceiveCompletesWhileItsSubmitterSleeps). The
// submitter is whichever Go thread called io_uring_enter: the poller's, or
// the thread of a goroutine that registered the connection (another
// poller's accept, a dialer), or the poller's own thread of an earlier
// time, before the Go scheduler moved the poller to another one. Once such
// a thread sleeps for good (an idle M sleeps in futex), every message on
// the connection wakes it: two context switches for a copy the poller's
// thread would have made itself. Measured before this (64 B x 100 closed
// loop, GOMAXPROCS=1, pinned): one idle M was woken 13,766 times a second,
// about once per five requests (74,059 a second), and burned 51% of a core; the epoll engine
// made 0.003 context switches per request, this one 0.25.
//
// So the poller keeps a home: its thread id, looked at every homeEvery
// waits and after a park that began at least homeParkGap after the last look
// (gettid is a system call, and a park is where the Go scheduler may
// resume the poller on another thread). Each receive is stamped with the
// home when it is submitted: the poller's flush stamps the current home,
// any other submitter 0, so its receives count as away. A receive seen away
// for homeAfter completions is cancelled, and armed again from the
// poller's next flush once its last completion is in (draining). A
// short-lived connection so costs nothing, and a long-lived one that was
// armed away moves once.

const (
	// homeEvery: the poller looks at its thread after this many waits.
	homeEvery = 64
	// homeParkGap: and after a park, when it last looked this long ago.
	homeParkGap = time.Millisecond
	// homeAfter: a receive moves home after this many completions away.
	homeAfter = 4
)

// checkHome looks at the poller's thread when it is due: every homeEvery
// waits, or after a park (parked) homeParkGap after the last look. A new
// thread is a new home, and every receive armed before it is away.
// Called on the poller goroutine.
func (r *ring) checkHome(parked bool) {
	r.homeLoops++
	if r.home != 0 && r.homeLoops < homeEvery {
		if !parked {
			return
		}
		if now := monoNow(); now-r.homeAt < int64(homeParkGap) {
			return
		}
	}
	r.homeLoops, r.homeAt = 0, monoNow()
	if tid := unix.Gettid(); tid != r.tid || r.home == 0 {
		r.tid = tid
		r.home++
		if r.home == 0 { // 0 means away
			r.home = 1
		}
	}
}

// stampQueuedLocked stamps the receives about to be submitted with the
// thread that submits them: the poller's home if the poller's flush does,
// else 0. Called with sqMu held.
func (r *ring) stampQueuedLocked() {
	home := uint32(0)
	if r.byPoller {
		home = r.home
	}
	for i, op := range r.queued {
		op.uring.home.Store(home)
		r.queued[i] = nil
	}
	r.queued = r.queued[:0]
}

// awayFromHome counts a completion of op's current receive and reports
// whether the receive should move to the poller's thread. Called on the
// poller goroutine with op.mu held.
func (r *ring) awayFromHome(op *FDOperator) bool {
	if op.uring.home.Load() == r.home {
		return false
	}
	if op.uring.foreign < homeAfter {
		op.uring.foreign++
		return false
	}
	return true
}

// moveHome cancels op's receive seq so that the poller's next flush arms
// it again from its own thread (drainedLocked, at the cancelled receive's
// last completion). Called on the poller goroutine.
func (r *ring) moveHome(op *FDOperator, seq uint32) error {
	op.mu.Lock()
	defer op.mu.Unlock()
	if !op.registered || !op.uring.receiving || op.uring.recvSeq != seq {
		return nil // cancelled, paused or detached since
	}
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	return r.cancelReceiveLocked(op)
}
