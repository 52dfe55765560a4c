package poller

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// testReceiver is a Receiver that counts its input, taken from a receive
// (OnData) or, where the ring polls its fd instead, read (OnReadable), and
// reports the peer's EOF.
type testReceiver struct {
	fd    int
	first chan string   // the first input, if not nil
	eof   chan struct{} // the EOF
	bytes atomic.Int64
	holds atomic.Int32
}

func (r *testReceiver) OnReadable(Poll) error {
	var buf [4096]byte
	n, err := sys.Read(r.fd, buf[:])
	switch {
	case n > 0:
		r.input(buf[:n])
	case err == nil:
		r.input(nil)
	}
	return nil
}
func (r *testReceiver) OnWritable(Poll) error { return nil }
func (r *testReceiver) OnHangup(Poll) error   { return nil }
func (r *testReceiver) OnData(_ Poll, data []byte, _ bool, err error) {
	if err == nil {
		r.input(data)
	}
}
func (r *testReceiver) Streaming(bool) bool { return false }
func (r *testReceiver) HoldFD() bool        { r.holds.Add(1); return true }
func (r *testReceiver) ReleaseFD()          { r.holds.Add(-1) }

// input counts data; empty data is the EOF.
func (r *testReceiver) input(data []byte) {
	if len(data) == 0 {
		signal(r.eof, struct{}{})
		return
	}
	if r.bytes.Add(int64(len(data))) == int64(len(data)) && r.first != nil {
		signal(r.first, string(data))
	}
}

// startRingPoller runs an io_uring poller until the test ends, or skips the
// test where the kernel refuses io_uring.
func startRingPoller(t *testing.T) *Poller {
	t.Helper()
	was := RequestedEngine()
	SetEngine(EngineIOURing)
	p := startPoller(t)
	SetEngine(was)
	if p.Engine() != EngineIOURing {
		t.Skipf("io_uring refused here: %v", FallbackError())
	}
	return p
}

// newTCPPair returns a connected non-blocking pair of loopback TCP sockets.
// The caller closes them.
func newTCPPair(t testing.TB) (a, b int) {
	t.Helper()
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	addr, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	b, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(b, addr); err != nil {
		unix.Close(b)
		t.Fatal(err)
	}
	a, _, err = unix.Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		unix.Close(b)
		t.Fatal(err)
	}
	if err := unix.SetNonblock(b, true); err != nil {
		unix.Close(a)
		unix.Close(b)
		t.Fatal(err)
	}
	return a, b
}

// newTestReceiver returns a testReceiver for fd.
func newTestReceiver(fd int) *testReceiver {
	return &testReceiver{fd: fd, first: make(chan string, 1), eof: make(chan struct{}, 1)}
}

// registerReceiver registers a testReceiver for fd on p.
func registerReceiver(t testing.TB, p *Poller, fd int) (*FDOperator, *testReceiver) {
	t.Helper()
	rcv := newTestReceiver(fd)
	return registerOwner(t, p, fd, rcv), rcv
}

// registerOwner registers owner for reading fd on p.
func registerOwner(t testing.TB, p *Poller, fd int, owner Owner) *FDOperator {
	t.Helper()
	op := p.Alloc()
	op.FD = fd
	SetOwner(op, owner)
	if err := op.Control(PollReadable); err != nil {
		t.Fatal(err)
	}
	return op
}

// A TCP socket takes its input from a multishot receive; a unix socket,
// whose receive can miss the peer's close (canReceive), is polled and read.
func TestOnlyTCPSocketsTakeTheirInputFromAReceive(t *testing.T) {
	p := startRingPoller(t)
	tcp, tcpPeer := newTCPPair(t)
	defer unix.Close(tcpPeer)
	defer unix.Close(tcp)
	local, _ := newSocketPair(t)
	for _, c := range []struct {
		name string
		fd   int
		want bool
	}{{"tcp", tcp, true}, {"unix", local, false}} {
		op, _ := registerReceiver(t, p, c.fd)
		op.mu.Lock()
		got := op.uring.receiver
		op.mu.Unlock()
		if err := op.Control(PollDetach); err != nil {
			t.Fatal(err)
		}
		op.Free()
		if got != c.want {
			t.Errorf("%s socket: takes its input from a receive = %v; want %v", c.name, got, c.want)
		}
	}
}

// Every byte of a stream and then its EOF reach the owner, on either kind
// of socket. On a unix socket a multishot receive lost the EOF now and then:
// it drained the socket and was never completed, though the peer had closed
// (see canReceive).
func TestAReceiverSeesTheEOFAfterAStream(t *testing.T) {
	p := startRingPoller(t)
	for _, network := range []string{"unix", "tcp"} {
		transfers := 150 // with receives, unix lost an EOF in 1 of 100 to 3,000
		if network == "tcp" {
			transfers = 40
		}
		for iter := range transfers {
			var a, b int
			if network == "tcp" {
				a, b = newTCPPair(t)
			} else {
				var err error
				if a, b, err = sys.SocketPair(); err != nil {
					t.Fatal(err)
				}
			}
			op, rcv := registerReceiver(t, p, a)
			sent := streamThenClose(t, b, 1<<20, iter)
			select {
			case <-rcv.eof:
			case <-time.After(5 * time.Second):
				t.Errorf("%s, transfer %d: no EOF within 5s of the peer's close (%d of %d bytes received)",
					network, iter, rcv.bytes.Load(), sent)
			}
			if got := rcv.bytes.Load(); got != int64(sent) {
				t.Errorf("%s, transfer %d: received %d bytes; want %d", network, iter, got, sent)
			}
			if err := op.Control(PollDetach); err != nil {
				t.Fatal(err)
			}
			// A callback of this registration may still run (the poller
			// looked before the detach): close a only when it is over, or
			// it would read the next transfer's socket, given a's number.
			barrier(t, p)
			op.Free()
			sys.Close(a)
			if t.Failed() {
				return
			}
		}
	}
}

// streamThenClose writes n bytes to fd in chunks of 1 to 1,024 bytes and
// closes it; it returns what it wrote.
func streamThenClose(t *testing.T, fd, n, seed int) int {
	t.Helper()
	defer sys.Close(fd)
	var buf [1024]byte
	sent := 0
	deadline := time.Now().Add(30 * time.Second)
	for sent < n {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver stopped taking input: %d of %d bytes written in 30s", sent, n)
		}
		k, err := sys.Write(fd, buf[:1+(sent*7+seed)%len(buf)])
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		sent += k
	}
	return sent
}

// The kernel posts a receive's completions from task work on the thread
// that submitted it. Our submitters are whichever Go threads call Control,
// and such a thread may then sleep in a system call for as long as the
// program likes (an idle M sleeps in futex until the scheduler needs it).
// The kernel must wake a sleeping submitter to run that work, as it does
// with IORING_SETUP_COOP_TASKRUN (it only spares a running one the
// interrupt); otherwise the completion, and the connection's input, would
// wait for that thread's next system call.
func TestAReceiveCompletesWhileItsSubmitterSleeps(t *testing.T) {
	p := startRingPoller(t)
	a, b := newTCPPair(t)
	defer unix.Close(b)
	defer unix.Close(a)
	sub := armFromSleepingThread(t, p, a)
	rcv := sub.rcv
	if _, err := sys.Write(b, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-rcv.first:
	case <-time.After(2 * time.Second):
	}
	sub.finish(t) // wake the submitter either way
	if got != "ping" {
		t.Fatalf("received %q within 2s while the receive's submitter slept; want %q", got, "ping")
	}
	if n := rcv.holds.Load(); n != 0 {
		t.Errorf("%d holds left after detach; want 0", n)
	}
}

// patternByte is byte i of stream s in TestStreamsSharingTheRingKeepTheirOwnBytes.
func patternByte(s, i int) byte { return byte(i*131 + i>>9 + s*37) }

// These test receivers are Receivers: an owner that is not is polled and
// read, and the tests would pass without a receive.
var (
	_ Receiver = (*testReceiver)(nil)
	_ Receiver = (*patternReceiver)(nil)
)

// patternReceiver checks that its input, received or read, is stream s's
// pattern, in order. With flip > 0 it calls its input a stream and then
// not, in turns of flip calls of Streaming, so the poller switches it
// between receives and reads all the time.
type patternReceiver struct {
	testReceiver
	stream int
	flip   int
	// Poller goroutine only.
	next     int // bytes checked
	calls    int // of Streaming
	lastMode bool
	// Read once the callbacks are over.
	received, read atomic.Int64 // bytes that came by each way
	switches       atomic.Int64 // changes of the poller's mode seen by Streaming
	bad            atomic.Int64
}

func (r *patternReceiver) check(data []byte) {
	for _, c := range data {
		if c != patternByte(r.stream, r.next) && r.bad.Load() == 0 {
			r.bad.Store(int64(r.next) + 1)
		}
		r.next++
	}
}

func (r *patternReceiver) OnData(p Poll, data []byte, more bool, err error) {
	r.check(data)
	r.received.Add(int64(len(data)))
	r.testReceiver.OnData(p, data, more, err)
}

func (r *patternReceiver) OnReadable(Poll) error {
	buf := make([]byte, 1+r.next%(64<<10)) // sizes vary, so reads stop mid-write
	n, err := sys.Read(r.fd, buf)
	switch {
	case n > 0:
		r.check(buf[:n])
		r.read.Add(int64(n))
		r.input(buf[:n])
	case err == nil:
		r.input(nil)
	}
	return nil
}

func (r *patternReceiver) Streaming(reading bool) bool {
	if reading != r.lastMode {
		r.switches.Add(1)
		r.lastMode = reading
	}
	if r.flip == 0 {
		return false
	}
	r.calls++
	return r.calls/r.flip%2 == 1
}

// Several streams received at once share the poller's buffers: on an
// incremental ring (6.15) one buffer holds pieces of many connections, at
// offsets the poller works out from the order of the completions; on a
// classic ring each completion has a buffer of its own. Either way every
// connection must get exactly its own bytes, in order.
func TestStreamsSharingTheRingKeepTheirOwnBytes(t *testing.T) {
	for _, incremental := range []bool{true, false} {
		name := "classic"
		if incremental {
			name = "incremental"
		}
		t.Run(name, func(t *testing.T) {
			if incremental && !kernelAtLeast(incrementalMajor, incrementalMinor) {
				t.Skipf("incremental rings are used from %d.%d", incrementalMajor, incrementalMinor)
			}
			incrementalRings = incremental
			defer func() { incrementalRings = true }()
			p := startRingPoller(t)
			if p.ring.bufs.Incremental() != incremental {
				t.Fatalf("incremental ring = %v; want %v", p.ring.bufs.Incremental(), incremental)
			}
			streamsKeepTheirOwnBytes(t, p, 0)
		})
	}
}

// A receiver whose input is a stream is read instead of received, and
// received again when it is not: here the owner changes its answer every
// other question, so each of 8 concurrent streams is switched back and
// forth several times, in the middle of the peer's writes. The bytes
// a cancelled receive still delivers must come before those of the first
// read, and a read's before the next receive's: every byte is checked.
func TestStreamsSwitchedBetweenReceivesAndReadsKeepTheirOrder(t *testing.T) {
	p := startRingPoller(t)
	if !p.ring.readsStreams {
		t.Skipf("streams are read instead of received on incremental rings only (%d.%d)", incrementalMajor, incrementalMinor)
	}
	// Every byte is checked in every attempt. Whether a stream is read at
	// all depends on timing: a switch cancels the receive, and reads start
	// only after its last completion (draining), so under load a fast peer
	// may finish while the cancelled receive still takes its input. The
	// test did not test unless one attempt switched enough; a few are let.
	const attempts = 5
	var why string
	for range attempts {
		total, unread := int64(0), 0
		for _, rcv := range streamsKeepTheirOwnBytes(t, p, 1) {
			if rcv.received.Load() == 0 || rcv.read.Load() == 0 {
				unread++
			}
			total += rcv.switches.Load()
		}
		if t.Failed() || total >= 24 && unread == 0 {
			return
		}
		why = fmt.Sprintf("%d switches in all, %d streams not both received and read; want 24 or more, and none", total, unread)
	}
	t.Errorf("in %d attempts: %s (the test did not test)", attempts, why)
}

// Streams are left on receives where the owner never calls them streams,
// and while the poller is told not to switch them.
func TestStreamsStayOnReceivesUnlessSwitched(t *testing.T) {
	streamReads = false
	defer func() { streamReads = true }()
	p := startRingPoller(t)
	for s, rcv := range streamsKeepTheirOwnBytes(t, p, 3) {
		if read, switches := rcv.read.Load(), rcv.switches.Load(); read != 0 || switches != 0 {
			t.Errorf("stream %d: %d bytes read and %d switches with stream reads off; want none", s, read, switches)
		}
	}
}

// streamsKeepTheirOwnBytes runs 8 streams of 1 MiB at once through p, each
// in writes of 1 byte to 16 KiB (paced where flip > 0), and checks every
// byte each receives; its receivers flip their Streaming answer every flip calls (0: never a
// stream). It returns them, their callbacks over.
func streamsKeepTheirOwnBytes(t *testing.T, p *Poller, flip int) []*patternReceiver {
	const streams, size = 8, 1 << 20
	type conn struct {
		a, b int
		op   *FDOperator
		rcv  *patternReceiver
	}
	conns := make([]conn, streams)
	for s := range conns {
		a, b := newTCPPair(t)
		rcv := &patternReceiver{testReceiver: testReceiver{fd: a, eof: make(chan struct{}, 1)}, stream: s, flip: flip}
		op := p.Alloc()
		op.FD = a
		SetOwner(op, rcv)
		if err := op.Control(PollReadable); err != nil {
			t.Fatal(err)
		}
		conns[s] = conn{a, b, op, rcv}
	}
	errs := make(chan error, streams)
	for s := range conns {
		go func() { errs <- writePattern(conns[s].b, s, size, flip > 0) }()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for s, c := range conns {
		select {
		case <-c.rcv.eof:
		case <-time.After(10 * time.Second):
			t.Errorf("stream %d: no EOF within 10s (%d of %d bytes received)", s, c.rcv.bytes.Load(), size)
		}
		if err := c.op.Control(PollDetach); err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, p) // the callbacks are over: their counters can be read
	for s, c := range conns {
		if got := c.rcv.bytes.Load(); got != size {
			t.Errorf("stream %d: received %d bytes; want %d", s, got, size)
		}
		if bad := c.rcv.bad.Load(); bad != 0 {
			t.Errorf("stream %d: byte %d is not the stream's own", s, bad-1)
		}
		c.op.Free()
		sys.Close(c.a)
	}
	rcvs := make([]*patternReceiver, len(conns))
	for s, c := range conns {
		rcvs[s] = c.rcv
	}
	return rcvs
}

// writePattern writes n bytes of stream s's pattern to fd, in writes of 1
// byte to 16 KiB, and closes fd. paced: it sleeps a little after each
// write, so the receiver takes the stream in many pieces.
func writePattern(fd, s, n int, paced bool) error {
	defer sys.Close(fd)
	buf := make([]byte, 16<<10)
	deadline := time.Now().Add(30 * time.Second)
	for sent, w := 0, 0; sent < n; w++ {
		if time.Now().After(deadline) {
			return errors.New("the receiver stopped taking input for 30s")
		}
		k := min(1+(w*7919+s*101)%len(buf), n-sent)
		for i := range k {
			buf[i] = patternByte(s, sent+i)
		}
		k, err := sys.Write(fd, buf[:k])
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err != nil {
			return err
		}
		sent += k
		if paced {
			time.Sleep(10 * time.Microsecond)
		}
	}
	return nil
}

// hangupReceiver is a testReceiver that counts the reads a poll made it
// do: while its receive owns the socket's input, every byte must come
// through OnData.
type hangupReceiver struct {
	*testReceiver
	reads   atomic.Int32
	hangups atomic.Int32
	ended   chan struct{} // the receive ended: EOF or error
}

func (r *hangupReceiver) OnReadable(p Poll) error {
	r.reads.Add(1)
	return r.testReceiver.OnReadable(p)
}
func (r *hangupReceiver) OnHangup(Poll) error { r.hangups.Add(1); return nil }
func (r *hangupReceiver) OnData(p Poll, data []byte, more bool, err error) {
	if len(data) == 0 {
		signal(r.ended, struct{}{})
	}
	r.testReceiver.OnData(p, data, more, err)
}

// A connection that waits to write (its socket's send buffer full) has a
// poll armed for writability next to its receive. When the peer resets the
// connection, that poll completes with an error and a hang-up. The poller
// must not read the socket for it: the receive may hold bytes it took but
// has not posted yet, and a read would deliver later bytes before them. The
// receive brings the remaining bytes and the error itself; the hang-up goes
// to the owner (OnHangup), which wakes its writer.
func TestAHangUpDoesNotReadAroundTheReceive(t *testing.T) {
	p := startRingPoller(t)
	for iter := range 20 {
		a, b := newTCPPair(t)
		if err := unix.SetsockoptInt(a, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
		fill := make([]byte, 4096)
		for {
			if _, err := sys.Write(a, fill); err != nil {
				break // EAGAIN: full, b does not read
			}
		}
		rcv := &hangupReceiver{testReceiver: newTestReceiver(a), ended: make(chan struct{}, 1)}
		op := registerOwner(t, p, a, rcv)
		if err := op.Control(PollR2RW); err != nil {
			t.Fatal(err)
		}
		if _, err := sys.Write(b, []byte("before the reset")); err != nil {
			t.Fatal(err)
		}
		receive(t, rcv.first, "the bytes before the reset")
		if err := unix.SetsockoptLinger(b, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			t.Fatal(err)
		}
		sys.Close(b) // a reset: unread input at b
		receive(t, rcv.ended, "the end of the receive")
		waitFor(t, "the hang-up", func() bool { return rcv.hangups.Load() > 0 })
		// The poll is not armed again by itself, but a writer that asks
		// again (Control) gets one, and hears of the hang-up again.
		before := rcv.hangups.Load()
		if err := op.Control(PollR2RW); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a hang-up for a writer that asked again", func() bool { return rcv.hangups.Load() > before })
		if err := op.Control(PollDetach); err != nil {
			t.Fatal(err)
		}
		barrier(t, p)
		op.Free()
		sys.Close(a)
		if n := rcv.reads.Load(); n != 0 {
			t.Fatalf("iteration %d: the hang-up made the poller read the socket %d times while its receive was armed", iter, n)
		}
	}
}
