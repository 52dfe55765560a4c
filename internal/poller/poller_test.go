//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poller

import (
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

func TestMain(m *testing.M) {
	// The root package reads NETPOLL_ENGINE for programs; these tests read it
	// themselves, so CI's io_uring run covers this package too.
	if os.Getenv("NETPOLL_ENGINE") == "io_uring" {
		SetEngine(EngineIOURing)
	}
	goleak.VerifyTestMain(m)
}

// startPoller runs a poller until the test ends; Cleanup closes it and checks
// that Wait returned nil.
func startPoller(t testing.TB) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Wait() = %v; want nil after Close", err)
		}
	})
	return p
}

// newSocketPair returns a connected non-blocking pair closed by t.Cleanup.
func newSocketPair(t testing.TB) (a, b int) {
	t.Helper()
	a, b, err := sys.SocketPair()
	if err != nil {
		t.Fatalf("SocketPair() = %v", err)
	}
	t.Cleanup(func() { sys.Close(a); sys.Close(b) })
	return a, b
}

// register allocates an operator for fd, lets setup fill its callbacks, and
// registers it for event.
func register(t testing.TB, p *Poller, fd int, event PollEvent, setup func(op *FDOperator)) *FDOperator {
	t.Helper()
	op := p.Alloc()
	op.FD = fd
	setup(op)
	if err := op.Control(event); err != nil {
		t.Fatalf("Control(%d) = %v", event, err)
	}
	// Detach before the sockets close (cleanups run last first), as the
	// contract asks: an io_uring poll holds the file, so closing the fd
	// alone would leave it armed. A test that frees op detaches it itself.
	t.Cleanup(func() {
		if op.gen.Load()&1 == 0 {
			_ = op.Control(PollDetach)
		}
	})
	return op
}

// receive waits for a value on ch, failing after 5s.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// signal sends v on ch unless it is full: callbacks must not block.
func signal[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// barrier makes p dispatch one more event for a fresh socket pair and waits
// for it. Reads are level-triggered, so an operator that were still armed with
// pending input would have been reported in this batch or an earlier one.
func barrier(t testing.TB, p *Poller) {
	t.Helper()
	a, b := newSocketPair(t)
	done := make(chan struct{}, 1)
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error { signal(done, struct{}{}); return nil }
	})
	sys.Write(b, []byte{1})
	receive(t, done, "barrier event")
	op.Control(PollDetach)
	op.Free()
}

func TestOnRead(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	got := make(chan string, 1)
	register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(pp Poll) error {
			if pp != p {
				t.Errorf("OnRead got poller %p; want %p", pp, p)
			}
			buf := make([]byte, 16)
			n, err := sys.Read(op.FD, buf)
			if err == nil {
				signal(got, string(buf[:n]))
			}
			return nil
		}
	})
	sys.Write(b, []byte("ping"))
	if s := receive(t, got, "OnRead"); s != "ping" {
		t.Fatalf("OnRead read %q; want %q", s, "ping")
	}
}

func TestInputsPath(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	buf := make([]byte, 3)
	acks := make(chan string, 4)
	register(t, p, a, PollReadable, func(op *FDOperator) {
		op.Inputs = func(vs [][]byte) [][]byte { vs[0] = buf; return vs[:1] }
		op.InputAck = func(n int) error { acks <- string(buf[:n]); return nil }
	})
	sys.Write(b, []byte("hello"))
	var got string
	for len(got) < 5 {
		got += receive(t, acks, "InputAck")
	}
	if got != "hello" {
		t.Fatalf("InputAck saw %q; want %q", got, "hello")
	}
	if p.vs[0] != nil {
		t.Fatalf("scratch still holds the owner's buffer after the read")
	}
}

func TestOutputsPath(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	acked := make(chan int, 1)
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error { return nil }
		op.Outputs = func(vs [][]byte) ([][]byte, bool) {
			vs[0], vs[1] = []byte("po"), []byte("ng")
			return vs[:2], false
		}
		op.OutputAck = func(n int) error {
			signal(acked, n)
			op.Control(PollRW2R) // on the poller goroutine: one write is all we want
			return nil
		}
	})
	if err := op.Control(PollR2RW); err != nil {
		t.Fatalf("Control(PollR2RW) = %v", err)
	}
	if n := receive(t, acked, "OutputAck"); n != 4 {
		t.Fatalf("OutputAck(%d); want 4", n)
	}
	buf := make([]byte, 8)
	if n, err := sys.Read(b, buf); string(buf[:n]) != "pong" {
		t.Fatalf("peer read %q, %v; want %q", buf[:n], err, "pong")
	}
}

func TestR2RWFiresOnWrite(t *testing.T) {
	p := startPoller(t)
	a, _ := newSocketPair(t)
	writable := make(chan struct{}, 1)
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnWrite = func(Poll) error {
			signal(writable, struct{}{})
			return op.Control(PollRW2R)
		}
	})
	if err := op.Control(PollR2RW); err != nil {
		t.Fatalf("Control(PollR2RW) = %v", err)
	}
	receive(t, writable, "OnWrite")
}

func TestPauseResume(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	reads := make(chan int, 16)
	calls := 0
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			calls++
			reads <- calls
			if calls == 1 {
				return op.Control(PollPauseRead) // leave the input unread
			}
			buf := make([]byte, 8)
			sys.Read(op.FD, buf)
			return nil
		}
	})
	sys.Write(b, []byte("x"))
	receive(t, reads, "first OnRead")
	barrier(t, p)
	select {
	case n := <-reads:
		t.Fatalf("OnRead call %d while reading is paused", n)
	default:
	}
	if err := op.Control(PollResumeRead); err != nil {
		t.Fatalf("Control(PollResumeRead) = %v", err)
	}
	if n := receive(t, reads, "OnRead after resume"); n != 2 {
		t.Fatalf("OnRead call %d after resume; want 2", n)
	}
}

func TestPeerClose(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	eof := make(chan struct{}, 1)
	hup := make(chan struct{}, 1)
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			if n, err := sys.Read(op.FD, make([]byte, 8)); n == 0 && err == nil {
				signal(eof, struct{}{})
			}
			return nil
		}
		op.OnHup = func(Poll) error {
			// An owner that reads for itself detaches when it is done; the
			// test looks only once the detach is over.
			err := op.Control(PollDetach)
			signal(hup, struct{}{})
			return err
		}
	})
	sys.Shutdown(b, unix.SHUT_WR)
	receive(t, eof, "OnRead reading 0")
	receive(t, hup, "OnHup")
	if err := op.Control(PollR2RW); !errors.Is(err, ErrDetached) {
		t.Fatalf("Control(PollR2RW) after hang-up = %v; want ErrDetached", err)
	}
}

func TestInputsPathEOF(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	hup := make(chan struct{}, 2)
	register(t, p, a, PollReadable, func(op *FDOperator) {
		op.Inputs = func(vs [][]byte) [][]byte { vs[0] = make([]byte, 8); return vs[:1] }
		op.InputAck = func(int) error { return nil }
		op.OnHup = func(Poll) error { hup <- struct{}{}; return nil }
	})
	sys.Close(b)
	receive(t, hup, "OnHup")
	barrier(t, p)
	if len(hup) != 0 {
		t.Fatalf("OnHup called twice for one hang-up")
	}
}

func TestDetach(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	reads := make(chan struct{}, 1)
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error { signal(reads, struct{}{}); return nil }
	})
	if err := op.Control(PollDetach); err != nil {
		t.Fatalf("Control(PollDetach) = %v", err)
	}
	if err := op.Control(PollDetach); err != nil {
		t.Fatalf("second Control(PollDetach) = %v; want nil", err)
	}
	sys.Write(b, []byte("x"))
	barrier(t, p)
	if len(reads) != 0 {
		t.Fatalf("OnRead called after PollDetach")
	}
}

func TestControlErrors(t *testing.T) {
	p := startPoller(t)
	other := startPoller(t)
	a, _ := newSocketPair(t)
	op := other.Alloc()
	op.FD = a
	tests := []struct {
		name  string
		poll  *Poller
		event PollEvent
		want  error
	}{
		{"foreign operator", p, PollReadable, ErrForeignOperator},
		{"pause before register", other, PollPauseRead, ErrDetached},
		{"r2rw before register", other, PollR2RW, ErrDetached},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.poll.Control(op, tt.event); !errors.Is(err, tt.want) {
				t.Fatalf("Control(%d) = %v; want %v", tt.event, err, tt.want)
			}
		})
	}
}

func TestTriggerWakesBlockedWait(t *testing.T) {
	p := startPoller(t)
	waitFor(t, "poller to block", func() bool { return p.sleeping.Load() })
	if err := p.Trigger(); err != nil {
		t.Fatalf("Trigger() = %v", err)
	}
	// The poller goroutine clears sleeping for its wake-up, drains the wake-up
	// channel and blocks again; a poller that never woke keeps it pending.
	waitFor(t, "poller to wake and block again", func() bool {
		return p.sleeping.Load() && !wakePending(t, p)
	})
}

// waitFor polls cond until it holds, failing after 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseBeforeWait(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait() after Close = %v; want nil at once", err)
	}
	if err := p.Control(p.Alloc(), PollReadable); !errors.Is(err, ErrClosed) {
		t.Fatalf("Control() after Close = %v; want ErrClosed", err)
	}
}

func TestTickerOnIdlePoller(t *testing.T) {
	p := startPoller(t)
	const interval = 20 * time.Millisecond
	ticks := make(chan int64, 8)
	p.SetTicker(interval, func(now int64) { signal(ticks, now) })
	start := time.Now().UnixNano()
	prev := start
	for i := range 4 {
		now := receive(t, ticks, "tick")
		if gap := time.Duration(now - prev); gap < interval-time.Millisecond {
			t.Fatalf("tick %d came %v after the previous one; want >= %v", i, gap, interval)
		}
		prev = now
	}
	p.SetTicker(0, nil)
}
