package mux

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The library's pollers and idle handler goroutines are process-wide
		// and outlive a test by design; this package cannot stop them.
		goleak.IgnoreAnyFunction("github.com/ccb70390/netpoll/internal/poller.(*Poller).loop"),
		goleak.IgnoreTopFunction("github.com/ccb70390/netpoll.(*workerPool).serve"),
	)
}

// TestShardQueueDeliversEveryMessage: many goroutines Add length-prefixed
// messages; the peer receives each exactly once, intact.
func TestShardQueueDeliversEveryMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := <-accepted
	defer peer.Close()

	q := NewShardQueue(4, conn)
	const goroutines, per = 16, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				id := uint32(g*per + i)
				q.Add(func() (netpoll.Writer, bool) {
					if id%97 == 0 {
						return nil, true // a cancelled message
					}
					buf := netpoll.NewLinkBuffer()
					b, _ := buf.Malloc(8)
					binary.BigEndian.PutUint32(b, 4)
					binary.BigEndian.PutUint32(b[4:], id)
					_ = buf.Flush()
					return buf, false
				})
			}
		}()
	}
	wg.Wait()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[uint32]bool{}
	for id := uint32(0); id < goroutines*per; id++ {
		if id%97 != 0 {
			want[id] = true
		}
	}
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame := make([]byte, 8)
	for len(want) > 0 {
		if _, err := io.ReadFull(peer, frame); err != nil {
			t.Fatalf("%d messages missing: %v", len(want), err)
		}
		id := binary.BigEndian.Uint32(frame[4:])
		if binary.BigEndian.Uint32(frame) != 4 || !want[id] {
			t.Fatalf("unexpected frame %x", frame)
		}
		delete(want, id)
	}
	q.Add(func() (netpoll.Writer, bool) { t.Error("Add after Close ran"); return nil, true })
}

// TestShardQueueFlushErrorClosesConnection: when the connection fails, the
// queue closes it instead of losing messages silently.
func TestShardQueueFlushErrorClosesConnection(t *testing.T) {
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	loop, _ := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		return c.Reader().Skip(c.Reader().Len())
	})
	go func() { _ = loop.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = loop.Shutdown(ctx)
	}()
	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close() // every later flush fails
	q := NewShardQueue(0, conn)
	q.Add(func() (netpoll.Writer, bool) {
		buf := netpoll.NewLinkBuffer()
		_, _ = buf.WriteString("x")
		_ = buf.Flush()
		return buf, false
	})
	_ = q.Close()
	if conn.IsActive() {
		t.Fatalf("connection still active after a failed flush")
	}
}

// The mux surface of the reference, with exact types (API.md).
var (
	_ int                                       = ShardSize
	_ func(int, netpoll.Connection) *ShardQueue = NewShardQueue
	_ func(q *ShardQueue, gts ...WriterGetter)  = (*ShardQueue).Add
	_ func(q *ShardQueue) error                 = (*ShardQueue).Close
	_ WriterGetter                              = func() (buf netpoll.Writer, isNil bool) { return nil, true }
)
