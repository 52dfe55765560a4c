package netpoll

import (
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
		idle, called := len(wp.idle), wp.called
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
