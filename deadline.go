package netpoll

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a settable point in time that waiters can select on. Setting,
// moving or clearing it takes effect on calls that are already waiting: a
// waiter holds the channel from wait, which is closed when the deadline
// passes, and stays open when the deadline is extended in time.
//
// Its state is made on first use, since most connections never set a
// deadline nor wait for one: an idle connection then pays one pointer per
// deadline, not the state's 56 bytes. Safe for concurrent use.
type deadline struct {
	s atomic.Pointer[deadlineState]
}

// state returns the deadline's state, making it on first use.
func (d *deadline) state() *deadlineState {
	if s := d.s.Load(); s != nil {
		return s
	}
	s := new(deadlineState)
	if d.s.CompareAndSwap(nil, s) {
		return s
	}
	return d.s.Load()
}

// set moves the deadline to t; a zero t clears it.
func (d *deadline) set(t time.Time) {
	if t.IsZero() && d.s.Load() == nil {
		return // nothing set and nobody waiting: already clear
	}
	d.state().set(t)
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} { return d.state().wait() }

// exceeded reports whether the deadline has passed.
func (d *deadline) exceeded() bool {
	s := d.s.Load()
	return s != nil && s.exceeded()
}

// deadlineState is a deadline once used. The timer is made once and
// re-armed with Reset, so setting a deadline per request does not allocate.
type deadlineState struct {
	mu     sync.Mutex
	when   time.Time     // zero: no deadline; guarded by mu
	timer  *time.Timer   // fires expire; nil until the first future deadline
	cancel chan struct{} // closed once when passes; nil until a waiter asks
	passed bool          // cancel is closed
	// armed is true while a deadline is set or has passed, so the common
	// case of no deadline costs one atomic load. Written under mu.
	armed atomic.Bool
}

// set moves the deadline to t; a zero t clears it.
func (d *deadlineState) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	d.armed.Store(!t.IsZero())
	if d.timer != nil {
		d.timer.Stop()
	}
	if t.IsZero() {
		d.reopenLocked()
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		d.closeLocked()
		return
	}
	d.reopenLocked()
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.expire)
		return
	}
	d.timer.Reset(wait)
}

// expire runs on the timer; a stale firing after the deadline moved later
// finds the deadline not yet passed and does nothing.
func (d *deadlineState) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.when.IsZero() && !time.Now().Before(d.when) {
		d.closeLocked()
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadlineState) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
		if d.passed {
			close(d.cancel)
		}
	}
	return d.cancel
}

// exceeded reports whether the deadline has passed.
func (d *deadlineState) exceeded() bool {
	if !d.armed.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.passed {
		return true
	}
	if !d.when.IsZero() && !time.Now().Before(d.when) {
		d.closeLocked()
		return true
	}
	return false
}

func (d *deadlineState) closeLocked() {
	if d.passed {
		return
	}
	d.passed = true
	d.armed.Store(true)
	if d.cancel != nil {
		close(d.cancel)
	}
}

func (d *deadlineState) reopenLocked() {
	if d.passed {
		d.passed = false
		d.cancel = nil
	}
}
