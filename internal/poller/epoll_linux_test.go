package poller

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// wakePending reports whether the eventfd (on io_uring, the completion
// ring) still holds an undelivered wake-up.
func wakePending(t testing.TB, p *Poller) bool {
	t.Helper()
	if p.ring != nil {
		return p.ring.ready()
	}
	fds := []unix.PollFd{{Fd: int32(p.wakefd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// TestStaleEventDropped plays one batch by hand: the first event's handler
// closes the second event's fd and registers a new socket that reuses the
// number; the second, now stale, event must reach neither operator.
func TestStaleEventDropped(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.ring != nil {
		t.Skip("epoll engine only: plays epoll events by hand; see TestRingStaleCompletionDropped")
	}
	a, _ := newSocketPair(t)
	c, d, err := sys.SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(d)

	var staleCalls, newCalls int
	var newOp *FDOperator
	victim := register(t, p, c, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error { staleCalls++; return nil }
	})
	first := register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			victim.Control(PollDetach)
			sys.Close(c)
			victim.Free()
			e, f, err := sys.SocketPair()
			if err != nil {
				t.Error(err)
				return nil
			}
			t.Cleanup(func() { sys.Close(e); sys.Close(f) })
			if e != c {
				t.Logf("fd %d not reused (got %d); the generation check is still exercised", c, e)
			}
			newOp = register(t, p, e, PollReadable, func(op *FDOperator) {
				op.OnRead = func(Poll) error { newCalls++; return nil }
			})
			return nil
		}
	})
	p.events[0] = sys.EpollEvent{Events: unix.EPOLLIN, Fd: first.index, Pad: int32(first.gen.Load())}
	p.events[1] = sys.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: victim.index, Pad: int32(victim.gen.Load())}
	p.dispatch(2)

	if newOp == nil {
		t.Fatal("first handler did not run")
	}
	if newOp == victim {
		t.Fatal("Alloc reused an operator freed in the batch being dispatched")
	}
	if staleCalls != 0 || newCalls != 0 {
		t.Fatalf("stale event called the old operator %d times and the new one %d times; want 0, 0", staleCalls, newCalls)
	}
	p.ops.promote() // what Wait does after the batch
	reused := false
	for range 1 << chunkShift {
		if p.Alloc() == victim {
			reused = true
			break
		}
	}
	if !reused {
		t.Fatal("operator freed in a batch was not reusable after it")
	}
}
