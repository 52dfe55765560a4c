package netpoll

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// newLocalListener listens on a fresh loopback TCP port, or on a unix socket
// under the test's temporary directory; the test's cleanup closes it.
func newLocalListener(t testing.TB, network string) Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := CreateListener(network, addr)
	if err != nil {
		t.Fatalf("CreateListener(%q, %q) = %v", network, addr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// startServer serves ln with an EventLoop built from onRequest and opts. The
// cleanup shuts it down and waits for Serve to return.
func startServer(t testing.TB, ln Listener, onRequest OnRequest, opts ...Option) EventLoop {
	t.Helper()
	loop, err := NewEventLoop(onRequest, opts...)
	if err != nil {
		t.Fatalf("NewEventLoop: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	// A Shutdown before Serve has taken the listener makes Serve fail (by
	// design), and a test that ends at once would shut down that early:
	// wait until Serve has taken it, or has returned.
	waitFor(t, 5*time.Second, "Serve to take the listener", func() bool {
		select {
		case err := <-served:
			served <- err // the cleanup judges it
			return true
		default:
			return loop.(*server).tookListener()
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := loop.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after Shutdown; want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return loop
}

// tookListener reports whether Serve has taken a listener (and not given it
// back after failing to register it).
func (s *server) tookListener() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listener != nil
}

// echoHandler writes back whatever input is buffered. It flushes before it
// releases, because WriteBinary may reference the input's memory.
func echoHandler(_ context.Context, c Connection) error {
	r, w := c.Reader(), c.Writer()
	b, err := r.Next(r.Len())
	if err != nil {
		return err
	}
	if _, err = w.WriteBinary(b); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	return r.Release()
}

// dial connects to ln's address with the library's dialer.
func dial(t testing.TB, ln net.Listener) Connection {
	t.Helper()
	c, err := DialConnection(ln.Addr().Network(), ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("DialConnection(%v) = %v", ln.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialStd connects with package net, as an independent peer.
func dialStd(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(ln.Addr().Network(), ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("net.Dial(%v) = %v", ln.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// countFDs returns the number of open file descriptors of the process.
func countFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(entries)
}

// checkNoFDLeak fails the test if, at cleanup, the process holds more fds
// than when it was called (after waiting a while for closes to land).
func checkNoFDLeak(t testing.TB) {
	t.Helper()
	before := countFDs(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			now := countFDs(t)
			if now <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("fd leak: %d open before the test, %d after", before, now)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// recvTimeout reads one value from ch or fails after d.
func recvTimeout[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		var zero T
		return zero
	}
}

// isTimeoutErr reports whether err is a net.Error timeout.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
