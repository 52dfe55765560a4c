package netpoll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDialedConnectionOnRequest: a dialed client connection gets OnRequest
// for the server's replies.
func TestDialedConnectionOnRequest(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	c := dial(t, ln)
	replies := make(chan string, 10)
	if err := c.SetOnRequest(func(ctx context.Context, c Connection) error {
		b, err := c.Reader().Next(5)
		if err != nil {
			return err
		}
		replies <- string(b)
		return c.Reader().Release()
	}); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello", "world"} {
		if _, err := c.Writer().WriteString(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.Writer().Flush(); err != nil {
			t.Fatal(err)
		}
		if got := recvTimeout(t, replies, 5*time.Second, "reply"); got != msg {
			t.Fatalf("reply = %q; want %q", got, msg)
		}
	}
}

func TestDialUnixAndTCPTypes(t *testing.T) {
	checkNoFDLeak(t)
	tcpLn := newLocalListener(t, "tcp")
	unixLn := newLocalListener(t, "unix")
	startServer(t, tcpLn, echoHandler)
	startServer(t, unixLn, echoHandler)

	raddr, err := ResolveTCPAddr("tcp", tcpLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc, err := DialTCP(context.Background(), "tcp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	uaddr, err := ResolveUnixAddr("unix", unixLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	uc, err := DialUnix("unix", nil, uaddr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for _, c := range []Connection{tc, uc} {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
			t.Fatalf("%T echo = %q, %v", c, b, err)
		}
		if c.RemoteAddr().String() == "" || c.LocalAddr() == nil {
			t.Fatalf("%T addresses: local %v remote %v", c, c.LocalAddr(), c.RemoteAddr())
		}
	}
	if err := tc.SetKeepAlive(5); err != nil {
		t.Fatalf("SetKeepAlive: %v", err)
	}
	if tc.Fd() <= 0 || uc.Fd() <= 0 {
		t.Fatalf("Fd() = %d, %d", tc.Fd(), uc.Fd())
	}
}

func TestDialErrors(t *testing.T) {
	checkNoFDLeak(t)
	// A port nobody listens on: refused, not a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := DialConnection("tcp", addr, time.Second); err == nil {
		t.Fatalf("dial to closed port succeeded")
	}
	if _, err := DialConnection("udp-nope", addr, time.Second); err == nil {
		t.Fatalf("dial with unknown network succeeded")
	}
	if _, err := DialConnection("unix", t.TempDir()+"/none", time.Second); err == nil {
		t.Fatalf("dial to missing unix socket succeeded")
	}
}

func TestDialTimeout(t *testing.T) {
	checkNoFDLeak(t)
	// A listener with a backlog of 0 that never accepts: once its accept
	// queue is full, Linux drops further SYNs, so a connect hangs in
	// SYN_SENT, on loopback, until the dialer's timeout.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue: these complete the handshake and wait to be accepted.
	for range 4 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	start := time.Now()
	c, err := NewDialer().DialConnection("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("dial to a full accept queue succeeded")
	}
	if !errors.Is(err, ErrDialTimeout) || !isTimeoutErr(err) {
		t.Fatalf("dial to a full accept queue = %v; want ErrDialTimeout, a net.Error timeout", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("dial gave up after %v; want about 200ms", d)
	}
}

func TestNewFDConnection(t *testing.T) {
	checkNoFDLeak(t)
	r, w := GetSysFdPairs()
	cr, err := NewFDConnection(r)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	cw, err := NewFDConnection(w)
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Close()
	if _, err := cw.Write([]byte("pair")); err != nil {
		t.Fatal(err)
	}
	b, err := cr.Reader().Next(4)
	if err != nil || string(b) != "pair" {
		t.Fatalf("Next(4) = %q, %v", b, err)
	}
}

// TestListenerAccept: calling Accept directly gives a Connection of ours.
func TestListenerAccept(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			_, _ = c.Write([]byte("abc"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, ok := c.(Connection)
	if !ok {
		t.Fatalf("Accept returned %T; want a Connection", c)
	}
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "abc" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v; want net.ErrClosed", err)
	}
}
