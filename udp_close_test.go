package netpoll

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
)

// TestUDPClosedListenerLeavesFreedOperator checks a suspicion of #15: Close
// frees the socket's poller operator, but a session outlives the listener
// and may still send; if its send finds the socket full it arms write
// interest on the operator, which by then may belong to another fd. The
// full socket cannot be made on loopback at will, so the test calls the
// wait a full socket leads to, after the freed operator went to a pipe.
func TestUDPClosedListenerLeavesFreedOperator(t *testing.T) {
	l := newUDPListener(t)
	peer := dialUDP(t, l)
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess := conn.(*udpSession)
	_ = sess.SetWriteTimeout(300 * time.Millisecond)
	sock := l.sockets[0]
	sock.mu.Lock()
	freed := sock.op
	sock.mu.Unlock()
	p := freed.Poller().(*poller.Poller)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Take operators from the poller until it hands out the freed one; it
	// becomes reusable once the poller has finished a batch.
	var taken []*poller.FDOperator
	defer func() {
		for _, op := range taken {
			op.Free()
		}
	}()
	reused := false
	for deadline := time.Now().Add(5 * time.Second); !reused && time.Now().Before(deadline) && len(taken) < 100000; {
		_ = p.Trigger()
		op := p.Alloc()
		taken = append(taken, op)
		reused = op == freed
	}
	if !reused {
		t.Fatal("the poller never handed out the listener's freed operator again")
	}
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pipe[0])
	defer syscall.Close(pipe[1])
	freed.FD = pipe[0]
	freed.OnRead = func(poller.Poll) error { return nil }
	if err := freed.Control(poller.PollReadable); err != nil {
		t.Fatalf("registering the reused operator: %v", err)
	}
	defer func() { _ = freed.Control(poller.PollDetach) }()

	if err := sock.waitWritable(sess.connection); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("waiting for the closed listener's socket to drain = %v; want ErrConnClosed at once, without touching the operator it freed", err)
	}
}
