package netpoll

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/poller"
)

// An idle close set in OnPrepare, before the connection is polled, must
// take effect: before #15 the connection was never watched and a silent
// client stayed connected for good. (The idle close was SetIdleTimeout
// then; it is WithIdleCloseTimeout's now, and SetIdleTimeout sets TCP
// keepalive as the reference's does.)
func TestIdleTimeoutSetInOnPrepare(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(context.Context, Connection) error { return nil },
		WithOnPrepare(func(c Connection) context.Context {
			_ = c.(*connection).setIdleClose(300 * time.Millisecond)
			return nil
		}))
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err != io.EOF {
		t.Fatalf("a silent client's read = %v after %v; want io.EOF: the idle timeout set in OnPrepare closes it", err, time.Since(start))
	}
}

// Switching a connection's idle timeout off and on must not file it in its
// wheel again each time: before #15, 10,000 toggles left 10,000 entries for
// the connection's whole life.
func TestIdleTimeoutToggleFilesOnce(t *testing.T) {
	p, err := poller.New() // never waits: nothing turns its wheel meanwhile
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := &connection{}
	c.init(-1, "tcp", nil)
	c.operator = p.Alloc()
	defer c.operator.Free()
	for range 10000 {
		_ = c.setIdleClose(time.Minute)
		_ = c.setIdleClose(0)
	}
	_ = c.setIdleClose(time.Minute)
	w := wheelOf(p)
	w.mu.Lock()
	filed := len(w.incoming)
	w.mu.Unlock()
	if filed != 1 {
		t.Fatalf("after 10,000 toggles the wheel holds the connection %d times; want 1", filed)
	}
	// A tick that finds it switched off drops it; switched on again, it is
	// filed again, once.
	_ = c.setIdleClose(0)
	tickIdleWheel(p, time.Now().UnixNano())
	_ = c.setIdleClose(time.Minute)
	w.mu.Lock()
	filed = len(w.incoming)
	w.mu.Unlock()
	if filed != 1 {
		t.Fatalf("after a tick dropped it and the timeout came back, the wheel takes it %d times; want 1", filed)
	}
}

// SetIdleTimeout is the reference's: TCP keepalive, not a close. Hertz and
// Kitex pass their keep-alive times to WithIdleTimeout and close idle
// connections themselves, so a silent connection must stay open.
func TestIdleTimeoutIsKeepAlive(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	accepted := make(chan Connection, 1)
	startServer(t, ln, func(context.Context, Connection) error { return nil },
		WithIdleTimeout(300*time.Millisecond),
		WithOnPrepare(func(c Connection) context.Context {
			accepted <- c
			return nil
		}))
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := recvTimeout(t, accepted, 5*time.Second, "the connection")
	on, err := unix.GetsockoptInt(c.(*connection).fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	if err != nil || on != 1 {
		t.Fatalf("SO_KEEPALIVE = %d, %v; want 1: WithIdleTimeout turns on keepalive", on, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent client's read = %v; want a timeout: WithIdleTimeout does not close", err)
	}
}
