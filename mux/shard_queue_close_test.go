package mux

import (
	"sync"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
)

// gatedWriter is a Writer whose second Flush blocks until release closes.
type gatedWriter struct {
	netpoll.Writer // only Append and Flush are called
	mu             sync.Mutex
	flushes        int
	entered        chan struct{} // receives when the gated Flush starts
	release        chan struct{}
}

func (w *gatedWriter) Append(netpoll.Writer) error { return nil }

func (w *gatedWriter) Flush() error {
	w.mu.Lock()
	w.flushes++
	n := w.flushes
	w.mu.Unlock()
	if n == 2 {
		w.entered <- struct{}{}
		<-w.release
	}
	return nil
}

// writerConn is a Connection that has only a Writer.
type writerConn struct {
	netpoll.Connection
	w *gatedWriter
}

func (c *writerConn) Writer() netpoll.Writer { return c.w }

func message(s string) WriterGetter {
	return func() (netpoll.Writer, bool) {
		buf := netpoll.NewLinkBuffer()
		_, _ = buf.WriteString(s)
		_ = buf.Flush()
		return buf, false
	}
}

// TestShardQueueCloseWaitsForLateFlusher checks a suspicion of #15: a
// flusher that has decided to stop clears the queue's busy mark after an
// Add already started the next flusher, so Close returns while that one is
// still sending. The hook puts the Add in exactly that gap.
func TestShardQueueCloseWaitsForLateFlusher(t *testing.T) {
	w := &gatedWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	q := NewShardQueue(1, &writerConn{w: w})
	var once sync.Once
	testHookFlusherDone = func() { once.Do(func() { q.Add(message("second")) }) }
	defer func() { testHookFlusherDone = nil }()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(w.release) }) }
	defer unblock()

	q.Add(message("first"))
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the second flusher never flushed")
	}
	closed := make(chan struct{})
	go func() {
		_ = q.Close()
		close(closed)
	}()
	select {
	case <-closed:
		unblock()
		t.Fatal("Close returned while a flusher was still inside Flush")
	case <-time.After(200 * time.Millisecond):
	}
	unblock()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the last flush finished")
	}
}
