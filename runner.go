package netpoll

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The runner calls OnConnect and OnRequest off the poller goroutine. By
// default it is a pool of reused goroutines: a task goes to an idle worker if
// there is one, else to a new goroutine that joins the pool when it is done.
// Reusing goroutines keeps their grown stacks, which a go statement per
// request would lose. Idle workers are bounded; the oldest idle ones leave
// when idle for longer than workerIdleTime, checked whenever a worker parks,
// so the pool needs no timer goroutine.

// runnerFunc is the current runner; replaced by SetRunner and DisableGopool.
var runnerFunc atomic.Pointer[func(ctx context.Context, f func())]

func init() {
	run := defaultPool.run
	runnerFunc.Store(&run)
}

// runTask hands f to the current runner.
func runTask(ctx context.Context, f func()) {
	(*runnerFunc.Load())(ctx, f)
}

// SetRunner replaces the function that runs OnConnect and OnRequest. A
// runner that calls f() directly runs handlers on the poller goroutine: the
// fastest mode, for handlers that never block (they must not wait for more
// input or for a full socket to drain, or the poller stalls).
//
// Deprecated: use [Configure] with Config.Runner.
func SetRunner(f func(ctx context.Context, f func())) {
	if f == nil {
		run := defaultPool.run
		runnerFunc.Store(&run)
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
	mu   sync.Mutex
	idle []*worker // guarded by mu; most recently parked last
}

type worker struct {
	tasks    chan func() // a nil task tells the worker to leave
	parkedAt time.Time   // guarded by workerPool.mu
}

var defaultPool = &workerPool{}

func (wp *workerPool) run(_ context.Context, f func()) {
	wp.mu.Lock()
	if n := len(wp.idle); n > 0 {
		w := wp.idle[n-1]
		wp.idle[n-1] = nil
		wp.idle = wp.idle[:n-1]
		wp.mu.Unlock()
		w.tasks <- f
		return
	}
	wp.mu.Unlock()
	w := &worker{tasks: make(chan func(), 1)}
	go wp.serve(w, f)
}

func (wp *workerPool) serve(w *worker, f func()) {
	for f != nil {
		f()
		if !wp.park(w) {
			return
		}
		f = <-w.tasks
	}
}

// park puts w on the idle list, and tells the oldest idle worker to leave if
// it has idled too long. It reports false when w should leave instead.
func (wp *workerPool) park(w *worker) bool {
	now := time.Now()
	var expired *worker
	wp.mu.Lock()
	if len(wp.idle) >= maxIdleWorkers {
		wp.mu.Unlock()
		return false
	}
	if len(wp.idle) > 0 && now.Sub(wp.idle[0].parkedAt) > workerIdleTime {
		expired = wp.idle[0]
		copy(wp.idle, wp.idle[1:])
		wp.idle[len(wp.idle)-1] = nil
		wp.idle = wp.idle[:len(wp.idle)-1]
	}
	w.parkedAt = now
	wp.idle = append(wp.idle, w)
	wp.mu.Unlock()
	if expired != nil {
		expired.tasks <- nil
	}
	return true
}

// drain tells every idle worker to leave. Tests call it before checking for
// leaked goroutines.
func (wp *workerPool) drain() {
	wp.mu.Lock()
	idle := wp.idle
	wp.idle = nil
	wp.mu.Unlock()
	for _, w := range idle {
		w.tasks <- nil
	}
}
