package netpoll

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
)

// Races of close, timeouts and pausing against receives the kernel still
// holds, on the io_uring engine (issue #18; the ownership rules of #15). They
// skip on epoll: CI runs them in its NETPOLL_ENGINE=io_uring step.

// requireIOURing skips t unless the pollers run on io_uring.
func requireIOURing(t *testing.T) {
	t.Helper()
	if pollers.Engine() != poller.EngineIOURing {
		t.Skip("io_uring engine only: run with NETPOLL_ENGINE=io_uring")
	}
}

// TestIOURingCloseRacesReceive closes server connections at random moments
// while their clients stream input, so closes meet receives in every state:
// armed, with completions queued, re-armed after ENOBUFS, cancelled. Every
// client must then see its connection end (the fd really closed once the
// cancelled receive's last completion came back), and no fd may be left.
func TestIOURingCloseRacesReceive(t *testing.T) {
	requireIOURing(t)
	checkNoFDLeak(t)
	conns := make(chan Connection, 64)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(context.Context, Connection) error { return nil },
		WithOnConnect(func(ctx context.Context, c Connection) context.Context {
			conns <- c
			return ctx
		}))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for round := range 40 {
		const clients = 6
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			c := dialStd(t, ln)
			wg.Go(func() {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				for i := 0; i < 64; i++ {
					if _, err := c.Write(payload); err != nil {
						break // the server closed: expected
					}
				}
				// The server's close must reach us: EOF or a reset, not the deadline.
				_, err := io.Copy(io.Discard, c)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					errs <- err
				}
				_ = c.Close()
			})
		}
		for range clients {
			c := <-conns
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			_ = c.Close()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: a client never saw its closed connection end: %v", round, err)
		}
	}
}

// TestIOURingTimeoutRacesInput lets read timeouts expire just as input
// arrives: the handler closes on a timeout, with a receive in flight. Each
// connection must end, and the fds with them.
func TestIOURingTimeoutRacesInput(t *testing.T) {
	requireIOURing(t)
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(_ context.Context, c Connection) error {
		r := c.Reader()
		if _, err := r.Next(r.Len() + 1); err != nil {
			return c.Close() // a timeout, racing the next input
		}
		return r.Release()
	}, WithReadTimeout(2*time.Millisecond))
	for range 60 {
		c := dialStd(t, ln)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		for i := range 4 {
			if _, err := c.Write([]byte("tick")); err != nil {
				break
			}
			time.Sleep(time.Duration(i) * time.Millisecond)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server never closed: %v", err)
			}
		}
		_ = c.Close()
	}
}
