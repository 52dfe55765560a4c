package netpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newUDPListener listens on a fresh loopback UDP port; the cleanup closes it.
func newUDPListener(t testing.TB, opts ...ListenerOption) *UDPListener {
	t.Helper()
	ln, err := CreateListener("udp", "127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("CreateListener(udp) = %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	u, ok := ln.(*UDPListener)
	if !ok {
		t.Fatalf("CreateListener(udp) = %T; want *UDPListener", ln)
	}
	return u
}

// dialUDP opens a package net UDP socket connected to l, as an independent peer.
func dialUDP(t testing.TB, l *UDPListener) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatalf("DialUDP(%v) = %v", l.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// udpRoundTrip sends msg and reads one datagram back within a second.
func udpRoundTrip(c *net.UDPConn, msg []byte) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 70000)
	if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return nil, err
	}
	n, err := c.Read(buf)
	return buf[:n], err
}

// TestUDPSessionEchoManyPeers serves 64 peers at once with the TCP echo
// handler: each datagram comes back whole to its own sender.
func TestUDPSessionEchoManyPeers(t *testing.T) {
	checkNoFDLeak(t)
	l := newUDPListener(t)
	startServer(t, l, echoHandler)
	const peers, rounds = 64, 20
	errs := make(chan error, peers)
	var wg sync.WaitGroup
	for p := range peers {
		c := dialUDP(t, l)
		wg.Go(func() {
			for i := range rounds {
				msg := []byte(fmt.Sprintf("peer %d round %d %s", p, i, bytes.Repeat([]byte{'x'}, i*50)))
				var got []byte
				var err error
				// Loopback may drop under load: retry a lost round trip.
				for range 3 {
					if got, err = udpRoundTrip(c, msg); err == nil {
						break
					}
				}
				if err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("peer %d round %d: got %q, %v; want %q", p, i, got, err, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := ReadMetrics(); m.ConnectionsOpen < peers {
		t.Errorf("ConnectionsOpen = %d; want at least %d sessions", m.ConnectionsOpen, peers)
	}
}

// TestUDPBoundaries sends a burst while the handler is held, so the datagrams
// queue behind the first: each must still reach OnRequest alone and come back
// as its own datagram, in order.
func TestUDPBoundaries(t *testing.T) {
	l := newUDPListener(t)
	release := make(chan struct{})
	var calls atomic.Int32
	startServer(t, l, func(ctx context.Context, c Connection) error {
		if calls.Add(1) == 1 {
			<-release
		}
		return echoHandler(ctx, c)
	})
	c := dialUDP(t, l)
	sizes := []int{1, 700, 3, 1400, 9000, 2, 60000, 5}
	for i, n := range sizes {
		if _, err := c.Write(bytes.Repeat([]byte{byte('a' + i)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	sess := waitSession(t, l)
	waitFor(t, 5*time.Second, "the burst to queue", func() bool { return int(sess.queued.Load()) == len(sizes)-1 })
	close(release)
	buf := make([]byte, 70000)
	for i, n := range sizes {
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:got], bytes.Repeat([]byte{byte('a' + i)}, n)) {
			t.Fatalf("echo %d: %d bytes, %v; want %d bytes of %q", i, got, err, n, rune('a'+i))
		}
	}
	if got := calls.Load(); got != int32(len(sizes)) {
		t.Errorf("OnRequest ran %d times; want once per datagram, %d", got, len(sizes))
	}
}

// waitSession returns the only session of l once it exists.
func waitSession(t testing.TB, l *UDPListener) *udpSession {
	t.Helper()
	var sess *udpSession
	waitFor(t, 5*time.Second, "a session", func() bool {
		for _, s := range l.sockets {
			s.mu.Lock()
			for _, v := range s.sessions {
				sess = v
			}
			s.mu.Unlock()
		}
		return sess != nil
	})
	return sess
}

// TestUDPTruncation checks that a datagram over the maximum size is dropped
// and counted by sessions, and returned cut with ErrDatagramTruncated by
// ReadFrom, as is one larger than the reader's buffer.
func TestUDPTruncation(t *testing.T) {
	t.Run("session", func(t *testing.T) {
		l := newUDPListener(t, WithMaxDatagramSize(100))
		startServer(t, l, echoHandler)
		c := dialUDP(t, l)
		if _, err := c.Write(make([]byte, 101)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the truncation count", func() bool { return l.Truncated() == 1 })
		msg := bytes.Repeat([]byte{'k'}, 100)
		if got, err := udpRoundTrip(c, msg); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo after the oversized datagram = %q, %v; want %q", got, err, msg)
		}
	})
	tests := []struct {
		name    string
		send    int
		bufLen  int
		wantN   int
		wantErr bool
	}{
		{"fits", 100, 100, 100, false},
		{"over the listener's maximum", 150, 200, 100, true},
		{"over the reader's buffer", 80, 10, 10, true},
		{"empty", 0, 10, 0, false},
	}
	for _, tt := range tests {
		t.Run("ReadFrom/"+tt.name, func(t *testing.T) {
			l := newUDPListener(t, WithMaxDatagramSize(100))
			c := dialUDP(t, l)
			if _, err := c.Write(make([]byte, tt.send)); err != nil {
				t.Fatal(err)
			}
			if err := l.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, from, err := l.ReadFrom(make([]byte, tt.bufLen))
			if n != tt.wantN || errors.Is(err, ErrDatagramTruncated) != tt.wantErr {
				t.Fatalf("ReadFrom = %d, %v; want %d, truncated %v", n, err, tt.wantN, tt.wantErr)
			}
			if from.String() != c.LocalAddr().String() {
				t.Errorf("ReadFrom sender = %v; want %v", from, c.LocalAddr())
			}
			if tt.wantErr && l.Truncated() != 1 {
				t.Errorf("Truncated() = %d; want 1", l.Truncated())
			}
		})
	}
}

// TestUDPIdleSessionExpiry checks that a silent session ends after the idle
// timeout, and that the peer's next datagram opens a new one.
func TestUDPIdleSessionExpiry(t *testing.T) {
	checkNoFDLeak(t)
	l := newUDPListener(t)
	var prepared, closed atomic.Int32
	startServer(t, l, echoHandler, WithIdleTimeout(300*time.Millisecond),
		WithOnPrepare(func(c Connection) context.Context {
			prepared.Add(1)
			_ = c.AddCloseCallback(func(Connection) error { closed.Add(1); return nil })
			return nil
		}))
	c := dialUDP(t, l)
	if _, err := udpRoundTrip(c, []byte("one")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "the idle session to close", func() bool { return closed.Load() == 1 })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("session closed after %v; want about the 300ms idle timeout", d)
	}
	if got, err := udpRoundTrip(c, []byte("two")); err != nil || string(got) != "two" {
		t.Fatalf("echo after expiry = %q, %v", got, err)
	}
	if got := prepared.Load(); got != 2 {
		t.Errorf("OnPrepare ran %d times; want 2 (a new session after expiry)", got)
	}
}

// TestUDPReusePortSpread opens one socket per poller with SO_REUSEPORT and
// checks that the kernel gives each of them traffic from many peers.
func TestUDPReusePortSpread(t *testing.T) {
	before := pollers.NumLoops()
	if err := pollers.SetNumLoops(2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pollers.SetNumLoops(before) })
	l := newUDPListener(t, WithSocketReusePort(true))
	if len(l.sockets) != 2 {
		t.Fatalf("%d sockets; want one per poller, 2", len(l.sockets))
	}
	startServer(t, l, echoHandler)
	for i := range 32 {
		c := dialUDP(t, l)
		msg := []byte(fmt.Sprint("peer ", i))
		if got, err := udpRoundTrip(c, msg); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("peer %d echo = %q, %v", i, got, err)
		}
	}
	l.startMu.Lock() // Serve set the operators up under it
	samePoller := l.sockets[0].op.Poller() == l.sockets[1].op.Poller()
	l.startMu.Unlock()
	if samePoller {
		t.Errorf("both sockets are on one poller")
	}
	for i, s := range l.sockets {
		if s.received.Load() == 0 {
			t.Errorf("socket %d received nothing from 32 peers", i)
		}
	}
}

// TestUDPPacketConn uses the listener as a net.PacketConn: echo, deadline,
// Close unblocking a reader, and the two modes refusing to mix.
func TestUDPPacketConn(t *testing.T) {
	checkNoFDLeak(t)
	ln, err := ListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn = ln
	c := dialUDP(t, ln)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if _, err := pc.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply = %q, %v; want pong", buf[:n], err)
	}

	if err := pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pc.ReadFrom(buf); !isTimeoutErr(err) {
		t.Fatalf("ReadFrom past the deadline = %v; want a timeout", err)
	}
	loop, err := NewEventLoop(echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	if err := loop.Serve(ln); err == nil {
		t.Fatalf("Serve of a listener in packet mode = nil; want an error")
	}
	_ = loop.Shutdown(context.Background())

	_ = pc.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(buf)
		done <- err
	}()
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recvTimeout(t, done, 2*time.Second, "ReadFrom after Close"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close = %v; want net.ErrClosed", err)
	}
	if _, err := pc.WriteTo([]byte("x"), from); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close = %v; want net.ErrClosed", err)
	}
}

// TestUDPAccept serves a peer without an EventLoop: Accept returns its
// session, Read returns one datagram per call, Write sends one back.
func TestUDPAccept(t *testing.T) {
	checkNoFDLeak(t)
	l := newUDPListener(t)
	c := dialUDP(t, l)
	for _, m := range []string{"first", "second"} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("RemoteAddr = %v; want %v", conn.RemoteAddr(), c.LocalAddr())
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	for _, want := range []string{"first", "second"} {
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, want)
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err = c.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("reply = %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// TestUDPListenErrors checks the failures of CreateListener for UDP.
func TestUDPListenErrors(t *testing.T) {
	tests := []struct{ network, addr string }{
		{"udp", "127.0.0.1:bad"},
		{"udp4", "[::1]:0"},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.addr, func(t *testing.T) {
			ln, err := CreateListener(tt.network, tt.addr)
			if err == nil || ln != nil {
				t.Fatalf("CreateListener(%q, %q) = %v, %v; want nil and an error", tt.network, tt.addr, ln, err)
			}
		})
	}
}

// TestUDPSessionQueueingRacesEmptiedWindow puts the reader where the poller
// used to lose a datagram: the poller saw the window full and went to queue
// the next datagram; meanwhile the reader emptied the window, found nothing
// queued, and began to wait for more. The datagram must reach that waiting
// reader, not sit in the queue until its deadline.
func TestUDPSessionQueueingRacesEmptiedWindow(t *testing.T) {
	checkNoFDLeak(t)
	l := newUDPListener(t)
	c := dialUDP(t, l)
	if _, err := c.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess := conn.(*udpSession)
	// Accept may return before the poller put the first datagram in.
	for deadline := time.Now().Add(2 * time.Second); sess.inputBuffer.Len() != len("first"); {
		if time.Now().After(deadline) {
			t.Fatalf("window holds %d bytes; want the first datagram's %d", sess.inputBuffer.Len(), len("first"))
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan string, 1)
	hookRan := false
	hook := func(s *udpSession) {
		if s != sess {
			return
		}
		hookRan = true
		buf := make([]byte, 16)
		n, err := sess.Read(buf)
		if err != nil || string(buf[:n]) != "first" {
			t.Errorf("first Read = %q, %v; want \"first\"", buf[:n], err)
		}
		go func() {
			_ = sess.SetReadDeadline(time.Now().Add(time.Second))
			n, err := sess.Read(buf)
			if err != nil {
				second <- err.Error()
				return
			}
			second <- string(buf[:n])
		}()
		// Return to the poller's side only once the reader waits.
		for deadline := time.Now().Add(time.Second); sess.waitReadSize.Load() == 0; {
			if time.Now().After(deadline) {
				t.Error("the second Read never began to wait")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	testHookUDPQueueing.Store(&hook)
	sess.receive([]byte("second")) // as the poller would, while "first" is in the window
	testHookUDPQueueing.Store(nil)
	if !hookRan {
		t.Fatal("receive did not queue the datagram behind the first")
	}
	if got := <-second; got != "second" {
		t.Fatalf("second Read = %q; want \"second\"", got)
	}
}
