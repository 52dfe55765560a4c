package netpoll

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// TestPauseAtTheInputLimitKeepsOrder streams input far past a small input
// limit to a handler that consumes it slowly and at random, so the socket is
// paused at the limit and resumed many times while the reader consumes
// concurrently: a pause decided on a length the reader had already shrunk
// once stranded the reader (pauseInput). On io_uring each pause cancels the
// receive with completions still in flight, and each resume arms a new one
// (NETPOLL_ENGINE=io_uring). Every byte must arrive once, in order, within
// the read timeout.
func TestPauseAtTheInputLimitKeepsOrder(t *testing.T) {
	const total = 4 << 20
	// The stream grows the connection's read size to large pooled nodes;
	// they must be back before the test ends, or a pool-balance test that
	// runs next counts their return as its own (TestLinkBufferModel did).
	trackPool(t)
	held := bufpool.Held()
	got := make(chan error, 1)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(_ context.Context, c Connection) error {
		r := c.Reader()
		var off int
		for off < total {
			n := min(rand.IntN(3000)+1, total-off)
			b, err := r.Next(n)
			if err != nil {
				got <- err
				return err
			}
			for i, x := range b {
				if x != byte((off+i)%251) {
					got <- errors.New("input out of order or foreign")
					return c.Close()
				}
			}
			off += n
			_ = r.Release()
			if rand.IntN(64) == 0 {
				time.Sleep(100 * time.Microsecond) // let the limit pause the socket
			}
		}
		got <- nil
		return nil
	}, WithMaxInputBuffer(8<<10), WithReadTimeout(10*time.Second))
	c := dialStd(t, ln)
	msg := make([]byte, total)
	for i := range msg {
		msg[i] = byte(i % 251)
	}
	go func() { _, _ = c.Write(msg) }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler did not get all the input in 30 s")
	}
	_ = c.Close()
	waitFor(t, 5*time.Second, "the connection's buffers back in the pool", func() bool { return bufpool.Held() == held })
}
