package netpoll

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

func TestTaskQueueKeepsOrderAcrossGrowth(t *testing.T) {
	var q taskQueue
	var got []int
	next := 0
	push := func(k int) {
		for range k {
			i := next
			next++
			q.push(task{f: func() { got = append(got, i) }})
		}
	}
	pop := func(k int) {
		for range k {
			tk, ok := q.pop()
			if !ok {
				t.Fatalf("pop on a queue holding %d tasks found none", q.n)
			}
			tk.run()
		}
	}
	// Wrap the ring before it grows, so growth has to unwrap it.
	push(50)
	pop(40)
	push(200)
	pop(150)
	push(1000)
	pop(q.n)
	if _, ok := q.pop(); ok {
		t.Fatal("pop on an empty queue returned a task")
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("task %d ran in place %d", v, i)
		}
	}
	if len(got) != next {
		t.Fatalf("ran %d tasks; pushed %d", len(got), next)
	}
}

// A task that blocks must not hold up the tasks queued behind it, even on
// one CPU: here the first half wait for the last task.
func TestWorkerPoolBlockedTaskDoesNotStallQueue(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	wp := &workerPool{}
	defer wp.drain()
	const tasks = 200
	release := make(chan struct{})
	var done sync.WaitGroup
	done.Add(tasks)
	for i := range tasks {
		wp.run(context.Background(), func() {
			defer done.Done()
			switch {
			case i < tasks/2:
				<-release
			case i == tasks-1:
				close(release)
			}
		})
	}
	waitGroupWithin(t, &done, 10*time.Second)
}

func TestWorkerPoolRunsEveryTaskOnce(t *testing.T) {
	wp := &workerPool{}
	defer wp.drain()
	const submitters, each = 8, 2000
	var ran [submitters * each]atomic.Int32
	var done sync.WaitGroup
	done.Add(submitters * each)
	for s := range submitters {
		go func() {
			for i := range each {
				k := s*each + i
				wp.run(context.Background(), func() {
					ran[k].Add(1)
					if k%97 == 0 {
						time.Sleep(time.Microsecond) // some tasks park their worker
					}
					done.Done()
				})
			}
		}()
	}
	waitGroupWithin(t, &done, 20*time.Second)
	for k := range ran {
		if n := ran[k].Load(); n != 1 {
			t.Fatalf("task %d ran %d times", k, n)
		}
	}
}

// The point of the shared queue: on one CPU a burst of tasks that never
// block is run by one worker, with one more called in case it blocks, not
// by a goroutine per task.
func TestWorkerPoolBurstUsesTwoWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	wp := &workerPool{}
	defer wp.drain()
	const tasks = 500
	var done sync.WaitGroup
	for range 3 {
		done.Add(tasks)
		for range tasks {
			wp.run(context.Background(), done.Done)
		}
		waitGroupWithin(t, &done, 10*time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		wp.mu.Lock()
		idle, called := len(wp.idle), wp.called.Load()
		wp.mu.Unlock()
		if !called && idle > 0 || time.Now().After(deadline) {
			if idle > 2 {
				t.Fatalf("%d workers ran bursts of %d tasks; want at most 2", idle, tasks)
			}
			return
		}
		runtime.Gosched()
	}
}

func TestWorkerPoolIdleWorkerLeavesOnDrain(t *testing.T) {
	wp := &workerPool{}
	var done sync.WaitGroup
	done.Add(1)
	wp.run(context.Background(), done.Done)
	waitGroupWithin(t, &done, 5*time.Second)
	before := runtime.NumGoroutine()
	deadline := time.Now().Add(5 * time.Second)
	for {
		wp.mu.Lock()
		idle := len(wp.idle)
		wp.mu.Unlock()
		if idle == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers after one task; want 1", idle)
		}
		runtime.Gosched()
	}
	wp.drain()
	wp.mu.Lock()
	live := wp.live
	wp.mu.Unlock()
	if live != 0 {
		t.Fatalf("%d workers still counted live after drain", live)
	}
	for runtime.NumGoroutine() >= before {
		if time.Now().After(deadline) {
			t.Fatalf("the idle worker did not leave: %d goroutines, %d before drain", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitGroupWithin(t *testing.T, wg *sync.WaitGroup, limit time.Duration) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(limit):
		t.Fatalf("tasks still pending after %v", limit)
	}
}

// A runner set by the user gets every handler start, and the default pool
// is back once it is cleared.
func TestCustomRunnerRunsHandlers(t *testing.T) {
	var calls atomic.Int64
	SetRunner(func(_ context.Context, f func()) {
		calls.Add(1)
		go f()
	})
	defer func() {
		SetRunner(nil)
		if runnerFunc.Load() != &defaultRun {
			t.Error("SetRunner(nil) did not restore the default pool")
		}
	}()
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	conn, err := DialConnection("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 20 {
		msg := []byte{byte(i), 1, 2, 3}
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(msg) {
			t.Fatalf("echo %v; want %v", got, msg)
		}
	}
	// A running handler takes input that arrives meanwhile, so there may be
	// fewer starts than round trips, but never none.
	if n := calls.Load(); n == 0 {
		t.Fatal("the custom runner started no handler; the default pool ran them")
	}
}

// serveGoroutines counts the pooled workers of every pool, parked or busy,
// by their top-level function, as goleak would see them.
func serveGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "netpoll.(*workerPool).serve(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// startWorkers makes wp run n tasks at once, so it has n workers, and lets
// them finish together: a burst after which no task comes.
func startWorkers(t *testing.T, wp *workerPool, n int) {
	t.Helper()
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	release := make(chan struct{})
	for range n {
		wp.run(context.Background(), func() {
			defer done.Done()
			started.Done()
			<-release
		})
	}
	waitGroupWithin(t, &started, 10*time.Second)
	close(release)
	waitGroupWithin(t, &done, 10*time.Second)
}

// TestWorkerPoolIdleWorkersLeaveWhenQuiet is defect 10 of #15: workers left
// idle by a burst must leave after their idle time even if no task ever
// comes again; before, expiry was checked only when a worker parked.
func TestWorkerPoolIdleWorkersLeaveWhenQuiet(t *testing.T) {
	wp := &workerPool{idleTime: 50 * time.Millisecond}
	defer wp.drain()
	before := serveGoroutines()
	const burst = 20
	startWorkers(t, wp, burst)
	if got := serveGoroutines(); got < burst {
		t.Fatalf("%d worker goroutines after a burst of %d blocking tasks; want at least %d", got, burst, burst)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		wp.mu.Lock()
		live := wp.live
		wp.mu.Unlock()
		n := serveGoroutines()
		if live == 0 && n <= before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after a burst, with a 50ms idle time: %d workers live, %d worker goroutines (%d before); want them gone", live, n, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The pool still works after its workers left, and sheds again.
	startWorkers(t, wp, 3)
	waitFor(t, 5*time.Second, "the second burst's workers to leave", func() bool {
		wp.mu.Lock()
		defer wp.mu.Unlock()
		return wp.live == 0
	})
}

// TestWorkerPoolKeepsAWorkerThatStaysInUse checks the retire timer's second
// chance from both sides: an idle worker stays for at least the idle time,
// and one that is called more often than that is never retired (a pool that
// retired it would start a new goroutine, and lose its stack, for the next
// request of a steady trickle), while the timer keeps firing meanwhile.
func TestWorkerPoolKeepsAWorkerThatStaysInUse(t *testing.T) {
	const idleTime = 40 * time.Millisecond
	wp := &workerPool{idleTime: idleTime}
	defer wp.drain()
	idleWorker := func() *worker {
		var w *worker
		waitFor(t, 5*time.Second, "the worker to park", func() bool {
			wp.mu.Lock()
			defer wp.mu.Unlock()
			if len(wp.idle) == 1 && !wp.called.Load() && wp.tasks.n == 0 {
				w = wp.idle[0]
			}
			return w != nil
		})
		return w
	}
	runOne := func() {
		done := make(chan struct{})
		wp.run(context.Background(), func() { close(done) })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("task did not run within 5s")
		}
	}
	runOne()
	first := idleWorker()
	parked := time.Now()
	// 12 idle times of a task every quarter of one: the timer fires about
	// 12 times, and the worker must be the same throughout.
	for time.Since(parked) < 12*idleTime {
		time.Sleep(idleTime / 4)
		runOne()
		if w := idleWorker(); w != first {
			t.Fatalf("after %v of a task every %v, the pool's worker was replaced; a worker in use must stay", time.Since(parked).Round(time.Millisecond), idleTime/4)
		}
	}
	// Now idle: it stays for at least the idle time (a late timer only
	// makes that longer), then leaves.
	idleSince := time.Now()
	time.Sleep(idleTime * 3 / 4)
	wp.mu.Lock()
	live := wp.live
	wp.mu.Unlock()
	if live != 1 && time.Since(idleSince) < idleTime {
		t.Fatalf("%d workers live %v after the last task, before the idle time of %v; want 1", live, time.Since(idleSince).Round(time.Millisecond), idleTime)
	}
	waitFor(t, 5*time.Second, "the idle worker to leave", func() bool {
		wp.mu.Lock()
		defer wp.mu.Unlock()
		return wp.live == 0
	})
}

// TestServerHandlersLeaveAfterBurst is defect 10 seen from a server: a burst
// of connections whose handlers run at once, then silence; the handler
// goroutines must leave within the idle time.
func TestServerHandlersLeaveAfterBurst(t *testing.T) {
	defaultPool.mu.Lock()
	saved := defaultPool.idleTime
	defaultPool.idleTime = 100 * time.Millisecond
	defaultPool.mu.Unlock()
	defer func() {
		defaultPool.mu.Lock()
		defaultPool.idleTime = saved
		defaultPool.mu.Unlock()
	}()
	// Workers idle from earlier tests wait on a timer armed with the old idle
	// time; let them go now, so the count below is this test's alone.
	defaultPool.drain()
	waitFor(t, 5*time.Second, "drained workers to leave", func() bool { return serveGoroutines() == 0 })
	const before = 0
	const clients = 8
	var running sync.WaitGroup
	running.Add(clients)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(_ context.Context, c Connection) error {
		r := c.Reader()
		if _, err := r.Next(1); err != nil {
			return err
		}
		running.Done()
		<-release
		if _, err := c.Write([]byte{'!'}); err != nil {
			return err
		}
		return r.Release()
	})
	t.Cleanup(unblock) // registered after startServer's, so it runs before Shutdown
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dialStd(t, ln)
		if _, err := conns[i].Write([]byte{'?'}); err != nil {
			t.Fatal(err)
		}
	}
	waitGroupWithin(t, &running, 10*time.Second)
	if got := serveGoroutines(); got < before+clients {
		t.Fatalf("%d worker goroutines with %d handlers running; want at least %d", got, clients, before+clients)
	}
	unblock()
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("reply: %v", err)
		}
	}
	waitFor(t, 5*time.Second, "the handler goroutines to leave a quiet server", func() bool {
		return serveGoroutines() <= before
	})
}

// drain waits (up to a few seconds) until no task is queued and every
// worker is idle, then tells them all to leave. Tests call it before
// checking for leaked goroutines: a called worker may still be on its way
// to the queue when the last task is done.
func (wp *workerPool) drain() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		wp.mu.Lock()
		settled := !wp.called.Load() && wp.tasks.n == 0 && len(wp.idle) == wp.live
		if settled || time.Now().After(deadline) {
			idle := wp.idle
			wp.idle = nil
			wp.live -= len(idle)
			if wp.retiring {
				wp.retire.Stop()
				wp.retiring = false
			}
			wp.mu.Unlock()
			for _, w := range idle {
				w.wake <- false
			}
			return
		}
		wp.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// A reader the poller woke counts as pending once: the poller yields once
// more for it, then may linger.
func TestHandoffPendingCountsAWokenReaderOnce(t *testing.T) {
	if defaultPool.called.Load() {
		t.Skip("the default pool has a called worker right now")
	}
	readerWoken.Store(true)
	if !handoffPending() {
		t.Fatal("a woken reader is not reported as pending")
	}
	if readerWoken.Load() {
		t.Fatal("the look did not clear the woken reader")
	}
	if handoffPending() && !defaultPool.called.Load() {
		t.Fatal("the woken reader was reported twice")
	}
}

// The behaviour that flag buys: at GOMAXPROCS=1 a goroutine blocked in Next
// that the poller wakes runs before the poller waits again. Otherwise, once
// in about 61 schedules, the poller's yield lands it ahead of the reader and
// it lingers holding the P while the reader, and the reply it would write,
// wait for the linger timer. The hook sees each wait begin on the
// connection's poller; input stored but not yet taken by the blocked reader
// means the reader was woken and has not run.
func TestAWokenReaderRunsBeforeItsPollerWaitsAgain(t *testing.T) {
	const rounds = 3000
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b, err := sys.SocketPair()
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	defer sys.Close(b)
	conn, err := NewFDConnection(a)
	if err != nil {
		sys.Close(a)
		t.Fatalf("NewFDConnection: %v", err)
	}
	defer conn.Close()
	c := conn.(*connection)
	mine := c.operator.Poller()

	var waits, early atomic.Int64
	removeHook := poller.SetBeforeWaitHook(func(p poller.Poll) {
		if p != mine {
			return
		}
		waits.Add(1)
		if c.Reader().Len() > 0 {
			early.Add(1)
		}
	})
	defer removeHook()

	got := make(chan error, 1)
	go func() {
		for range rounds {
			_, err := c.Reader().Next(1)
			if err == nil {
				err = c.Reader().Release()
			}
			got <- err
			if err != nil {
				return
			}
		}
	}()
	for i := range rounds {
		if _, err := sys.Write(b, []byte{byte(i)}); err != nil {
			t.Fatalf("round %d: write: %v", i, err)
		}
		if err := recvTimeout(t, got, 5*time.Second, "the reader's byte"); err != nil {
			t.Fatalf("round %d: read: %v", i, err)
		}
	}
	if n := early.Load(); n > 0 {
		t.Errorf("%d of %d waits began while the reader the poller woke had not run", n, waits.Load())
	}
}
