//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poller

import (
	"testing"

	"github.com/ccb70390/netpoll/internal/sys"
	"golang.org/x/sys/unix"
)

// testOwner reports every event it gets on channels.
type testOwner struct {
	op                *FDOperator
	read, write, hang chan string
}

func (o *testOwner) OnReadable(Poll) error {
	buf := make([]byte, 16)
	n, err := sys.Read(o.op.FD, buf)
	if err == nil {
		signal(o.read, string(buf[:n]))
	}
	return nil
}

func (o *testOwner) OnWritable(Poll) error {
	signal(o.write, "writable")
	return o.op.Control(PollRW2R)
}

func (o *testOwner) OnHangup(Poll) error {
	signal(o.hang, "hangup")
	return o.op.Control(PollDetach)
}

// An Owner gets the events the three callback fields would, and like an
// OnRead owner it is only told of a hang-up, not detached for it.
func TestOwnerGetsEvents(t *testing.T) {
	p := startPoller(t)
	a, b := newSocketPair(t)
	o := &testOwner{read: make(chan string, 1), write: make(chan string, 1), hang: make(chan string, 1)}
	op := register(t, p, a, PollReadable, func(op *FDOperator) {
		o.op = op
		SetOwner(op, o)
	})
	sys.Write(b, []byte("ping"))
	if s := receive(t, o.read, "OnReadable"); s != "ping" {
		t.Fatalf("OnReadable read %q; want %q", s, "ping")
	}
	if err := op.Control(PollR2RW); err != nil {
		t.Fatal(err)
	}
	receive(t, o.write, "OnWritable")
	sys.Shutdown(b, unix.SHUT_WR)
	receive(t, o.hang, "OnHangup")
}

// Free clears the owner, so a reused operator never calls its last owner.
func TestFreeClearsOwner(t *testing.T) {
	p, err := New() // not waiting: this goroutine may promote
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	op := p.Alloc()
	SetOwner(op, &testOwner{})
	op.Free()
	p.ops.promote()
	again := p.Alloc()
	if again != op {
		t.Skip("the freed operator was not reused")
	}
	if again.owner != nil || again.reads() {
		t.Fatal("a reused operator kept its last owner")
	}
}
