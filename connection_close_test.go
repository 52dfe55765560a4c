package netpoll

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Detach racing the library's own close (the handler closing after the
// peer's FIN) must decide in one step who owns the fd: if Detach reports
// success the fd is the caller's and still open; if it reports
// ErrConnClosed the library closes it. Before #15 the two raced on a plain
// bool and the fd leaked when Detach lost but the close saw it detached.
func TestDetachRacesLibraryClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close() // the FIN makes the client's handler close
		}
	}()
	for i := range 200 {
		conn, err := DialConnection("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tc := conn.(*TCPConnection)
		fd := tc.Fd()
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			continue // the library closed it already: no race this time
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = conn.SetOnRequest(func(context.Context, Connection) error { return nil })
		}()
		time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		derr := tc.Detach()
		wg.Wait()
		var now unix.Stat_t
		switch {
		case derr == nil:
			if err := unix.Fstat(fd, &now); err != nil || now.Ino != st.Ino {
				t.Fatalf("trial %d: Detach = nil, but fd %d is no longer the connection's socket (%v)", i, fd, err)
			}
			_ = unix.Close(fd)
		case errors.Is(derr, ErrConnClosed):
			waitFor(t, time.Second, "the library to close the fd Detach did not get", func() bool {
				return unix.Fstat(fd, &now) != nil || now.Ino != st.Ino
			})
		default:
			t.Fatalf("trial %d: Detach = %v; want nil or ErrConnClosed", i, derr)
		}
	}
}
