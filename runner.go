package netpoll

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
)

// The runner calls OnConnect and OnRequest off the poller goroutine. By
// default it is a pool of reused goroutines that share one queue of tasks.
// A worker that finishes a task takes the next one itself, so a poller that
// found many ready connections in one wait hands their handlers over with
// one goroutine wake-up, not one per connection: waking a goroutine and
// switching to it cost more than a small handler does.
//
// A task may block, and the tasks behind it must not wait for it. So while
// tasks are queued there is always one called worker: woken (or started) and
// not yet at the queue. The worker that takes a task from the queue calls
// the next one if tasks remain and none is called; if the task then blocks,
// the called worker runs the rest. On one CPU the called worker runs only
// once the busy one blocks or is done, so a batch of handlers that never
// block costs two wake-ups in all.
//
// Reusing goroutines keeps their grown stacks, which a go statement per
// request would lose. Idle workers are bounded, and leave once idle for
// workerIdleTime (at most twice that). One timer per pool (not one per
// worker, and no goroutine waiting on it) retires them, by second chance:
// armed when a worker parks and none is armed, it fires every idle time
// while workers are idle, tells those it already saw idle at its previous
// firing (marked) to leave, and marks the rest. A worker that is called
// parks again unmarked. So a burst's workers leave a quiet server too (#15,
// defect 10), and a park reads no clock: at light load every request ends
// with one, and a time.Now per park cost a tenth of the hand-off
// (BenchmarkRunnerSingle -cpu 1, interleaved: 497-504 ns a task with it,
// 443-455 without; a bare channel, the least a hand-off costs, 386-397).

// runnerFunc is the current runner; replaced by SetRunner and DisableGopool.
var runnerFunc atomic.Pointer[func(ctx context.Context, f func())]

// defaultRun is the default pool's run; runnerFunc points at it while no
// other runner is set. It is set in init, since an initializer would make an
// initialization cycle.
var defaultRun func(ctx context.Context, f func())

func init() {
	defaultRun = defaultPool.run
	runnerFunc.Store(&defaultRun)
	poller.HandoffPending = handoffPending
}

// readerWoken is set when a poller wakes a goroutine blocked in a read, and
// cleared by the next handoffPending that sees it: the poller then yields
// once more, which lets the woken reader run before the poller lingers
// holding the P (see internal/poller/handoff.go). A Kitex client's caller
// waits that way for each reply; without this the reply sometimes waited
// for the linger timer's tick (one sequential caller: p99 1.6-1.9x
// cloudwego's, 3.5 ms with a 5 ms tick).
var readerWoken atomic.Bool

// handoffPending reports whether a goroutine the pollers woke may not have
// run yet: a called pool worker, or a reader woken since the last look.
func handoffPending() bool {
	if defaultPool.called.Load() {
		return true
	}
	return readerWoken.Load() && readerWoken.Swap(false)
}

// runHandler hands c.handle to the runner. The default pool queues the
// connection itself; another runner needs a func, made once per connection
// (only one goroutine at a time starts a connection's handler, and the
// pending counter orders one start after the last).
func runHandler(c *connection) {
	run := runnerFunc.Load()
	if run == &defaultRun {
		defaultPool.push(task{conn: c})
		return
	}
	if c.handleFunc == nil {
		c.handleFunc = c.handle
	}
	(*run)(*c.ctx.Load(), c.handleFunc)
}

// runTask hands f to the current runner.
func runTask(ctx context.Context, f func()) {
	(*runnerFunc.Load())(ctx, f)
}

// SetRunner replaces the function that runs OnConnect and OnRequest. A
// runner that calls f() directly runs handlers on the poller goroutine,
// for handlers that never block (they must not wait for more input or for
// a full socket to drain, or the poller stalls). It is not the cheaper
// mode: the poller then reads, handles and writes one connection at a time
// instead of reading a batch and handing it to the pool at once, and in
// bench/ (results/2026-11-26T124812Z) it cost 11–21% more CPU per request
// than the default pool at 100 and 1,000 connections, with a p99 at half
// load 4.6 times the pool's. Use it only where running on the poller is
// itself the point, not for speed.
//
// Deprecated: use [Configure] with Config.Runner.
func SetRunner(f func(ctx context.Context, f func())) {
	if f == nil {
		runnerFunc.Store(&defaultRun)
		return
	}
	runnerFunc.Store(&f)
}

// DisableGopool makes the library start a new goroutine for every task
// instead of reusing pooled ones.
//
// Deprecated: use [Configure] with Config.Runner.
func DisableGopool() error {
	SetRunner(func(_ context.Context, f func()) { go f() })
	return nil
}

const (
	maxIdleWorkers = 1024
	workerIdleTime = 10 * time.Second
)

// workerPool is the default runner.
type workerPool struct {
	mu    sync.Mutex
	tasks taskQueue // guarded by mu
	idle  []*worker // guarded by mu; most recently parked last
	// called: a worker was woken or started and has not reached the queue
	// yet, so it is runnable. Written under mu; read without it by the
	// pollers (handoffPending).
	called atomic.Bool
	live   int // guarded by mu; workers started and not yet gone

	idleTime time.Duration // guarded by mu; 0 means workerIdleTime (tests shorten it)
	retire   *time.Timer   // guarded by mu; runs retireIdle, made on first use
	retiring bool          // guarded by mu; retire is armed
}

type worker struct {
	wake chan bool // true: come to the queue; false: leave
	// marked: idle when the retire timer last fired; guarded by workerPool.mu.
	marked bool
}

var defaultPool = &workerPool{}

func (wp *workerPool) run(_ context.Context, f func()) {
	wp.push(task{f: f})
}

// task is a queued call: f, or the handler of conn, which needs no func
// value (a method value per connection would cost it 16 bytes for life).
type task struct {
	f    func()
	conn *connection
}

func (t task) run() {
	if t.conn != nil {
		t.conn.handle()
		return
	}
	t.f()
}

func (wp *workerPool) push(t task) {
	wp.mu.Lock()
	wp.tasks.push(t)
	if wp.called.Load() {
		wp.mu.Unlock()
		return
	}
	wp.callLocked()
}

// callLocked marks a worker called and wakes it, or starts one when none is
// idle. It unlocks mu.
func (wp *workerPool) callLocked() {
	wp.called.Store(true)
	if n := len(wp.idle); n > 0 {
		w := wp.idle[n-1]
		wp.idle[n-1] = nil
		wp.idle = wp.idle[:n-1]
		wp.mu.Unlock()
		w.wake <- true
		return
	}
	wp.live++
	wp.mu.Unlock()
	go wp.serve(&worker{wake: make(chan bool, 1)})
}

// serve is a worker's life. It starts called, and each time it is woken it
// is called again. The receive stays in this function so that leak checks
// can recognise a parked worker by its top function.
func (wp *workerPool) serve(w *worker) {
	wp.mu.Lock()
	wp.called.Store(false)
	for {
		t, ok := wp.tasks.pop()
		if !ok {
			if !wp.parkLocked(w) {
				return
			}
			if !<-w.wake {
				return
			}
			wp.mu.Lock()
			wp.called.Store(false)
			continue
		}
		if wp.tasks.n > 0 && !wp.called.Load() {
			wp.callLocked()
		} else {
			wp.mu.Unlock()
		}
		t.run()
		wp.mu.Lock()
	}
}

// parkLocked puts w on the idle list and makes sure the retire timer is
// armed. It unlocks mu, and reports false when w should leave instead.
func (wp *workerPool) parkLocked(w *worker) bool {
	if len(wp.idle) >= maxIdleWorkers {
		wp.live--
		wp.mu.Unlock()
		return false
	}
	w.marked = false
	wp.idle = append(wp.idle, w)
	if !wp.retiring {
		wp.retiring = true
		if wp.retire == nil {
			wp.retire = time.AfterFunc(wp.idleTimeLocked(), wp.retireIdle)
		} else {
			wp.retire.Reset(wp.idleTimeLocked())
		}
	}
	wp.mu.Unlock()
	return true
}

// retireIdle runs every idle time while workers are idle: it tells the
// workers that were idle at its previous run (marked) to leave, and marks the
// others. The idle list is in parking order, oldest first, and a worker that
// is called leaves it from the end and parks again at the end unmarked, so
// the marked workers are always a prefix of it. Runs on the timer's goroutine.
func (wp *workerPool) retireIdle() {
	wp.mu.Lock()
	expired := 0
	for expired < len(wp.idle) && wp.idle[expired].marked {
		expired++
	}
	leaving := make([]*worker, expired)
	copy(leaving, wp.idle)
	n := copy(wp.idle, wp.idle[expired:])
	clear(wp.idle[n:])
	wp.idle = wp.idle[:n]
	wp.live -= expired
	for _, w := range wp.idle {
		w.marked = true
	}
	wp.retiring = n > 0
	if wp.retiring {
		wp.retire.Reset(wp.idleTimeLocked())
	}
	wp.mu.Unlock()
	for _, w := range leaving {
		w.wake <- false
	}
}

// idleTimeLocked is how long a worker may idle before it leaves.
func (wp *workerPool) idleTimeLocked() time.Duration {
	if wp.idleTime > 0 {
		return wp.idleTime
	}
	return workerIdleTime
}

// taskQueue is a growable ring of tasks, oldest first.
type taskQueue struct {
	buf  []task
	head int // index of the oldest task
	n    int // tasks queued
}

func (q *taskQueue) push(t task) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = t
	q.n++
}

// pop returns the oldest task; ok is false when the queue is empty.
func (q *taskQueue) pop() (t task, ok bool) {
	if q.n == 0 {
		return task{}, false
	}
	t = q.buf[q.head]
	q.buf[q.head] = task{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return t, true
}

func (q *taskQueue) grow() {
	buf := make([]task, max(2*len(q.buf), 64))
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}
