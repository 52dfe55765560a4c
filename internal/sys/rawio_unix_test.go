//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadKeepsThePDuringTheSystemCall shows what rawio_unix.go promises:
// the data system calls do not tell the scheduler, so the calling goroutine
// keeps its P until the kernel returns. To make that visible the read is on
// a blocking pipe (the library's own sockets never block) whose only writer
// is a child process that writes after a delay. At GOMAXPROCS=1 a goroutine
// whose timer falls due meanwhile cannot run until the read returns; through
// Syscall, sysmon would hand the P on and the sleeper would wake on time.
func TestReadKeepsThePDuringTheSystemCall(t *testing.T) {
	if raceEnabled {
		t.Skip("race builds read through x/sys's annotated wrapper, which tells the scheduler")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh to write into the pipe: %v", err)
	}
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatalf("pipe: %v", err)
	}
	r := fds[0]
	w := os.NewFile(uintptr(fds[1]), "pipe-w")
	defer Close(r)

	const writerDelay = 400 * time.Millisecond
	child := exec.Command(sh, "-c", "sleep 0.4; printf x")
	child.Stdout = w
	if err := child.Start(); err != nil {
		w.Close()
		t.Fatalf("start writer: %v", err)
	}
	w.Close()
	defer child.Wait()

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var readReturned atomic.Bool
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		var b [1]byte
		_, err := Read(r, b[:])
		readReturned.Store(true)
		done <- err
	}()
	// The sleep parks this goroutine, the reader takes the P and blocks in
	// the kernel; the sleep falls due long before the child writes.
	time.Sleep(20 * time.Millisecond)
	wokeAfter := time.Since(start)
	returnedFirst := readReturned.Load()
	if err := <-done; err != nil {
		t.Fatalf("Read = %v", err)
	}
	if !returnedFirst {
		t.Fatalf("a 20 ms sleep woke after %v while Read was still in the kernel: the read gave up its P", wokeAfter)
	}
	if wokeAfter < writerDelay/2 {
		t.Fatalf("the sleep woke after %v, before the writer could have written", wokeAfter)
	}
}
