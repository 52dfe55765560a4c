package netpoll

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/sys"
)

// A reader that consumed less than half of a paused connection's input and
// waits for more than is buffered (but at most the limit) must be served:
// the poller paused at WithMaxInputBuffer and resumes only at half, so
// before #15 the reader waited for its read timeout.
func TestReaderWakesPausedConnection(t *testing.T) {
	const limit = 8192
	first := bytes.Repeat([]byte{'a'}, 9000)           // read up to the limit: the poller pauses
	rest := bytes.Repeat([]byte{'b'}, limit-6000+3000) // sent once the reader waits
	got := make(chan error, 1)
	sendRest := make(chan struct{})
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(_ context.Context, c Connection) error {
		r := c.Reader()
		if _, err := r.Peek(limit); err != nil { // the poller has reached the limit
			got <- err
			return err
		}
		if _, err := r.Next(3000); err != nil {
			got <- err
			return err
		}
		_ = r.Release() // 6000 left: more than half, so no resume here
		close(sendRest)
		p, err := r.Next(limit) // 6000 buffered, 8192 wanted
		if err == nil && (p[0] != 'a' || p[limit-1] != 'b') {
			err = io.ErrUnexpectedEOF
		}
		got <- err
		_ = c.Close()
		return err
	}, WithMaxInputBuffer(limit), WithReadTimeout(3*time.Second))

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(first); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sendRest:
	case err := <-got:
		t.Fatalf("handler failed before waiting: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never saw the first bytes")
	}
	if _, err := conn.Write(rest); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Next(%d) on a paused connection = %v; want the bytes", limit, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next on a paused connection never returned")
	}
}

// With WithProtocol, a frame between half the input limit and the limit,
// behind smaller pipelined frames, must not hang the connection: the
// framing loop, which has no read timeout, resumes the paused poller when a
// frame is incomplete.
func TestFramingResumesPausedConnection(t *testing.T) {
	const limit = 8192
	frame := func(size int, fill byte) []byte {
		p := make([]byte, 4+size)
		binary.BigEndian.PutUint32(p, uint32(size))
		for i := 4; i < len(p); i++ {
			p[i] = fill
		}
		return p
	}
	var stream []byte
	for i := range 3 {
		stream = append(stream, frame(996, byte('a'+i))...) // 3,000 bytes in all: under half
	}
	stream = append(stream, frame(limit-8, 'z')...) // 8,188 bytes: fits the limit
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		msg := MessageFrom(ctx)
		return WriteMessage(ctx, c, []byte{msg[0]})
	}, WithProtocol(LengthPrefixed(4, binary.BigEndian, limit)), WithMaxInputBuffer(limit))

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The first 8,192 bytes, then a pause so the poller stops at the limit
	// with the big frame incomplete, then the rest.
	if _, err := conn.Write(stream[:limit]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply := make([]byte, 4+1)
	for i := range 3 {
		if _, err := io.ReadFull(conn, reply); err != nil {
			t.Fatalf("reply to frame %d: %v", i, err)
		}
	}
	if _, err := conn.Write(stream[limit:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, reply); err != nil {
		t.Fatalf("reply to the frame of %d bytes behind three small ones: %v; want it served", limit-8, err)
	}
	if reply[4] != 'z' {
		t.Fatalf("reply to the big frame = %q; want 'z'", reply[4])
	}
}

// A readable report that finds nothing to read (EAGAIN) must not leave the
// booked node in the input buffer: an idle connection would keep a whole
// node of memory until its next message.
func TestEmptyReadKeepsNoNode(t *testing.T) {
	c, _ := newBareConnection(t)
	if err := c.onReadable(nil); err != nil {
		t.Fatal(err)
	}
	if held := heldNodes(c.inputBuffer); held != "" {
		t.Fatalf("after a read that found nothing, the input buffer holds %s; want no node", held)
	}
	if c.peerClosed.Load() {
		t.Fatal("EAGAIN was taken for the peer's EOF")
	}
}

// A connection calls its input a stream once receives fill its read size,
// or leave input behind in the socket, twice in a row; small messages never
// make it one; and once it is one, a single small read does not end it, a
// few do. The io_uring engine reads a stream instead of receiving it.
func TestStreamingFollowsTheReadSize(t *testing.T) {
	c, b := newBareConnection(t)
	small := make([]byte, 64)
	for range 100 {
		c.onData(small, false, nil)
	}
	if c.streaming(false) {
		t.Fatalf("100 receives of 64 B made a stream (read size %d)", c.bookSize)
	}
	piece := make([]byte, 2<<10) // a receive cut short by the end of a ring buffer
	c.onData(piece, true, nil)
	if c.streaming(false) {
		t.Fatalf("one receive that left input behind made a stream (read size %d)", c.bookSize)
	}
	c.onData(piece, true, nil)
	if !c.streaming(false) {
		t.Fatalf("two receives in a row that left input behind made no stream (read size %d)", c.bookSize)
	}
	if err := c.inputBuffer.Skip(c.inputBuffer.Len()); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for ; c.streaming(true); reads++ {
		if reads == 10 {
			t.Fatalf("10 small reads did not end the stream (read size %d)", c.bookSize)
		}
		if _, err := sys.Write(b, small); err != nil {
			t.Fatal(err)
		}
		if err := c.onReadable(nil); err != nil {
			t.Fatal(err)
		}
	}
	if reads < 2 {
		t.Errorf("the stream ended after %d small read; want it to outlast one", reads)
	}
}

// newBareConnection returns a connection on one end of a unix socket pair,
// not registered with any poller, so a test can call its poller-side
// methods itself, and the other end's fd. Both are closed when the test ends.
func newBareConnection(t *testing.T) (c *connection, peer int) {
	t.Helper()
	a, b, err := sys.SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	c = &connection{}
	c.init(a, "unix", nil)
	c.owner = c
	t.Cleanup(func() {
		_ = c.inputBuffer.Close()
		_ = c.outputBuffer.Close()
		_ = sys.Close(a)
		_ = sys.Close(b)
	})
	return c, b
}
