// Package poller runs the readiness loops: each [Poller] is one goroutine
// around epoll_wait (Linux) or kevent (BSD, macOS) that reads ready sockets and
// calls the callbacks of their [FDOperator]s; a [Manager] starts pollers and
// spreads new file descriptors over them.
//
// This file holds the portable loop. Each platform file (epoll_linux.go,
// kqueue_bsd.go, poller_other.go) must define:
//
//	type backend struct              // per-poller kernel state, embedded in Poller
//	var errAgain error               // the "not ready" errno, compared with ==
//	func (p *Poller) open() error    // create the kernel objects and the wake-up channel
//	func (p *Poller) wait(msec int) (int, error)  // one wait; msec 0 polls, -1 blocks
//	func (p *Poller) dispatch(n int) // handle the n events of the last wait, then grow the buffer if full
//	func (p *Poller) notify() error  // make a blocked or imminent wait return
//	func (p *Poller) arm(op *FDOperator, gen uint32, old, next interest, registered bool) error
//	func (p *Poller) disarm(op *FDOperator, old interest) error  // delete; ENOENT/EBADF are not errors
//	func (p *Poller) release() error // close the kernel objects; Wait has returned
package poller

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll/internal/sys"
)

// PollEvent is a change of an operator's registration, passed to Control.
type PollEvent int

// The registration changes. Reads are level-triggered: a readable socket is
// reported again on every wait until it is drained, so one read per message is
// enough and nothing is lost when a handler stops early.
const (
	// PollReadable registers the operator for reading (and hang-ups).
	PollReadable PollEvent = 0x1
	// PollWritable registers the operator for writing only, to learn when a
	// non-blocking connect finished.
	PollWritable PollEvent = 0x2
	// PollDetach removes the registration.
	PollDetach PollEvent = 0x3
	// PollR2RW adds write interest to a registration.
	PollR2RW PollEvent = 0x5
	// PollRW2R removes write interest from a registration.
	PollRW2R PollEvent = 0x6
	// PollPauseRead removes read interest without detaching, to stop reading
	// while the owner's input buffer is full.
	PollPauseRead PollEvent = 0x7
	// PollResumeRead adds read interest back after PollPauseRead.
	PollResumeRead PollEvent = 0x8
)

// Errors returned by Control and Wait; they are wrapped with context, so test
// them with errors.Is.
var (
	// ErrClosed is returned when the poller was closed.
	ErrClosed = errors.New("netpoll: poller closed")
	// ErrForeignOperator is returned by Control for an operator of another poller.
	ErrForeignOperator = errors.New("netpoll: operator belongs to another poller")
	// ErrDetached is returned by Control when an interest change is asked of an
	// operator that is not registered (never registered, detached, or hung up).
	ErrDetached = errors.New("netpoll: operator is not registered")

	errAlreadyWaiting = errors.New("netpoll: poller is already waiting")
)

// Poll is a readiness loop. The root package re-exports it.
type Poll interface {
	// Wait runs the loop on the calling goroutine and returns when the poller
	// is closed (nil) or the kernel wait fails.
	Wait() error
	// Close makes Wait return; the poller's descriptors are closed when it has.
	Close() error
	// Trigger wakes a blocked Wait. It makes no system call when the poller is
	// not blocked. Safe for concurrent use.
	Trigger() error
	// Control changes the registration of operator; see the PollEvent values.
	// Safe for concurrent use.
	Control(operator *FDOperator, event PollEvent) error
	// Alloc returns an unused operator bound to this poller. Safe for
	// concurrent use.
	Alloc() (operator *FDOperator)
	// Free returns operator for reuse; it must be detached first. Safe for
	// concurrent use, including from its own callbacks.
	Free(operator *FDOperator)
}

// Lifecycle states of a Poller, guarded by Poller.lifeMu:
//
//	idle --Wait--> running --(Close, loop error)--> closed
//	idle --Close--> closed
type state uint8

const (
	stateIdle state = iota
	stateRunning
	stateClosed
)

// scratchLen is how many buffers one readv or writev of the Inputs/Outputs
// paths passes at most.
const scratchLen = 64

// beforeWaitHook, when a test sets it (SetBeforeWaitHook), runs on each
// poller goroutine after a batch, before the next wait. An atomic pointer,
// because the root package's tests set it while shared pollers run.
var beforeWaitHook atomic.Pointer[func(Poll)]

// SetBeforeWaitHook makes every poller call f with itself after each batch,
// before its next wait (after it yielded to the goroutines the batch woke),
// and returns a function that removes it. For tests: a hook that checks what
// must have happened by then (a woken goroutine has run) sees each wait
// begin. f runs on poller goroutines and must not block.
func SetBeforeWaitHook(f func(Poll)) (remove func()) {
	beforeWaitHook.Store(&f)
	return func() { beforeWaitHook.Store(nil) }
}

// ticker is a periodic callback of the poller goroutine.
type ticker struct {
	interval time.Duration
	fn       func(now int64)
}

// Poller is one readiness loop; it implements [Poll].
type Poller struct {
	backend
	ops operatorTable
	// engine is the kernel interface backend uses; set once by New.
	engine Engine

	// Owned by the poller goroutine.
	vs         [][]byte
	iovs       []sys.Iovec
	tickerSeen *ticker
	nextTick   int64

	// sleeping is set by the poller goroutine just before a blocking wait and
	// cleared after it; Trigger clears it to claim the one wake-up write. Atomic.
	sleeping atomic.Bool
	// closing is set once by Close; the loop checks it every iteration. Atomic.
	closing atomic.Bool
	// tick is the periodic callback, nil when none. Atomic.
	tick atomic.Pointer[ticker]

	// lifeMu guards state. Lock order: lifeMu, then fdMu.
	lifeMu sync.Mutex
	state  state

	// fdMu keeps the backend's descriptors open while Control or a wake-up
	// uses them: they take it shared, release closes under it exclusively.
	fdMu sync.RWMutex
	// Guarded by fdMu.
	fdClosed bool

	// local is what the package above keeps for this poller (its counters,
	// its idle wheel), made once by Local.
	localOnce sync.Once
	local     any
}

// Local returns the state the caller keeps for p, made by newLocal on the
// first call. The poller never looks at it; it only keeps it with p, so
// that per-poller state needs no map keyed by poller. Safe for concurrent
// use; every call must pass the same constructor.
func (p *Poller) Local(newLocal func() any) any {
	p.localOnce.Do(func() { p.local = newLocal() })
	return p.local
}

// New creates a poller on the engine SetEngine asked for (see openEngine).
// Run it with Wait on a goroutine of its own.
func New() (*Poller, error) {
	p := &Poller{
		vs:   make([][]byte, scratchLen),
		iovs: make([]sys.Iovec, scratchLen),
	}
	if err := p.openEngine(); err != nil {
		return nil, err
	}
	return p, nil
}

// SetTicker makes Wait call fn on the poller goroutine about every interval
// (never more often), with now = time.Now().UnixNano(); fn must not block. A
// nil fn or an interval <= 0 removes the ticker; without one the loop reads no
// clock. Safe for concurrent use.
func (p *Poller) SetTicker(interval time.Duration, fn func(now int64)) {
	if fn == nil || interval <= 0 {
		p.tick.Store(nil)
	} else {
		p.tick.Store(&ticker{interval: interval, fn: fn})
	}
	p.Trigger() // a blocked wait recomputes its timeout; an error means closed
}

// Wait runs the loop until Close, then closes the poller's descriptors. It
// returns nil after Close (also when Close came first), an error if another
// goroutine is already waiting, or the kernel's error if a wait fails.
func (p *Poller) Wait() error {
	p.lifeMu.Lock()
	switch p.state {
	case stateRunning:
		p.lifeMu.Unlock()
		return errAlreadyWaiting
	case stateClosed: // closed before this goroutine got to run
		p.lifeMu.Unlock()
		return nil
	}
	p.state = stateRunning
	p.lifeMu.Unlock()

	err := p.loop()

	p.lifeMu.Lock()
	p.state = stateClosed
	if rerr := p.closeDescriptors(); err == nil {
		err = rerr
	}
	p.lifeMu.Unlock()
	return err
}

// loop waits for events and dispatches them, forever. There is no separate
// zero-timeout look after a busy batch: a wait with a timeout returns at once
// when events are pending, without arming a timer, so the look would only add
// a system call to every request that finds the poller idle after its batch
// (the common case at light load).
func (p *Poller) loop() error {
	for !p.closing.Load() {
		msec := p.runTicker()
		p.sleeping.Store(true)
		n, err := p.wait(msec)
		p.sleeping.Store(false)
		if err != nil {
			return err
		}
		if n > 0 {
			p.dispatch(n)
		}
		p.ops.promote()
		if n > 0 {
			// Let the handlers this batch woke run now. Under steady load the
			// next wait returns events again at once, so without this yield a
			// poller at GOMAXPROCS=1 would keep the P until the runtime's 10 ms
			// preemption, and every handler would wait that long.
			p.yieldToHandoffs()
		}
		if hook := beforeWaitHook.Load(); hook != nil {
			(*hook)(p)
		}
	}
	return nil
}

// runTicker calls the ticker if it is due and returns how long a blocking wait
// may last: -1 (forever) without a ticker, else the milliseconds to the next tick.
func (p *Poller) runTicker() (msec int) {
	t := p.tick.Load()
	if t == nil {
		p.tickerSeen = nil
		return -1
	}
	now := time.Now().UnixNano()
	if t != p.tickerSeen {
		p.tickerSeen = t
		p.nextTick = now + int64(t.interval)
	} else if now >= p.nextTick {
		t.fn(now)
		p.nextTick = now + int64(t.interval)
	}
	return int((p.nextTick - now + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// Close makes Wait return; Wait closes the descriptors on its way out (at once
// if Wait never ran). Close does not wait for Wait, so a callback may call it.
func (p *Poller) Close() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	switch p.state {
	case stateIdle:
		p.state = stateClosed
		return p.closeDescriptors()
	case stateRunning:
		if p.closing.Swap(true) {
			return nil
		}
		return p.wake()
	}
	return nil
}

// Trigger wakes a blocked Wait; see [Poll.Trigger].
func (p *Poller) Trigger() error {
	if !p.sleeping.CompareAndSwap(true, false) {
		return nil
	}
	return p.wake()
}

// wake runs notify while the descriptors are known to be open.
func (p *Poller) wake() error {
	p.fdMu.RLock()
	defer p.fdMu.RUnlock()
	if p.fdClosed {
		return fmt.Errorf("netpoll: trigger: %w", ErrClosed)
	}
	return p.notify()
}

// closeDescriptors closes the backend's descriptors once no Control or
// wake-up is using them. Called with lifeMu held, when Wait is not running.
func (p *Poller) closeDescriptors() error {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	p.fdClosed = true
	return p.release()
}

// Alloc returns an unused operator; see [Poll.Alloc].
func (p *Poller) Alloc() *FDOperator {
	return p.ops.alloc(p)
}

// Free returns op for reuse after the batch being dispatched; see [Poll.Free].
func (p *Poller) Free(op *FDOperator) {
	if op == nil || op.poller != p {
		return
	}
	p.ops.release(op)
}
