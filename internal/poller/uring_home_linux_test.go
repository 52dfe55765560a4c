package poller

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// threadSwitches returns the voluntary context switches of this process's
// thread tid so far.
func threadSwitches(t *testing.T, tid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no voluntary_ctxt_switches in the status of thread %d", tid)
	return 0
}

// sleepingSubmitter is a receive armed from a locked thread that then
// sleeps in read(2) on a pipe until finish.
type sleepingSubmitter struct {
	op    *FDOperator
	rcv   *testReceiver
	tid   int // the thread that armed the receive
	wake  int // the pipe's write end
	slept chan error
}

// armFromSleepingThread registers a receiver for fd on p from a thread of
// its own, which then sleeps, and returns once it has had 20 ms to fall
// asleep. The caller calls finish.
func armFromSleepingThread(t *testing.T, p *Poller, fd int) *sleepingSubmitter {
	t.Helper()
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil { // blocking: the read sleeps
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(pipe[1])
		unix.Close(pipe[0])
	})
	s := &sleepingSubmitter{wake: pipe[1], slept: make(chan error, 1)}
	armed := make(chan struct{})
	go func() {
		runtime.LockOSThread() // the thread that submits the receive is the one that sleeps
		defer runtime.UnlockOSThread()
		s.op, s.rcv = registerReceiver(t, p, fd)
		s.tid = unix.Gettid()
		close(armed)
		var one [1]byte
		_, err := unix.Read(pipe[0], one[:])
		s.slept <- err
	}()
	<-armed
	if !s.op.uring.receiver {
		s.finish(t)
		t.Fatal("a TCP socket is not receiving; this test needs a receive")
	}
	time.Sleep(20 * time.Millisecond) // let the submitter fall asleep in read
	return s
}

// finish wakes the submitter, waits for it, and detaches and frees the receiver.
func (s *sleepingSubmitter) finish(t *testing.T) {
	unix.Write(s.wake, []byte{0})
	if err := <-s.slept; err != nil {
		t.Errorf("submitter's read = %v", err)
	}
	if err := s.op.Control(PollDetach); err != nil {
		t.Errorf("detach: %v", err)
	}
	s.op.Free()
}

// A receive's completions are posted from task work on the thread that
// submitted it, which the kernel wakes for each one if it sleeps (see
// TestAReceiveCompletesWhileItsSubmitterSleeps). A receive armed by a thread
// that then sleeps for good (an idle M, or the thread of another poller)
// must move to its poller's thread, or every message costs that thread a
// wake-up and the CPU two context switches; under the echo benchmark one
// idle M was woken about once per five requests. After its first
// completions the poller arms it again from its own thread.
func TestAReceiveArmedByASleepingThreadMovesToItsPoller(t *testing.T) {
	p := startRingPoller(t)
	a, b := newTCPPair(t)
	defer unix.Close(b)
	defer unix.Close(a)
	by := armFromSleepingThread(t, p, a)
	defer by.finish(t)

	const messages = 200
	before := threadSwitches(t, by.tid)
	for i := 1; i <= messages; i++ {
		if _, err := sys.Write(b, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for by.rcv.bytes.Load() < int64(i) {
			if time.Now().After(deadline) {
				t.Fatalf("message %d not received within 2s", i)
			}
			runtime.Gosched()
		}
	}
	woken := threadSwitches(t, by.tid) - before
	// A few wake-ups are the receive's first completions and its cancel.
	if woken > messages/10 {
		t.Errorf("the thread that armed the receive and sleeps was woken %d times for %d messages; want at most %d", woken, messages, messages/10)
	}
}
