package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/examples/internal/extest"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines, ignoring the library's pollers and
// idle handler goroutines, which live as long as the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ccb70390/netpoll/internal/poller.(*Poller).loop"),
		goleak.IgnoreTopFunction("github.com/ccb70390/netpoll.(*workerPool).serve"),
	)
}

// TestUDPEcho drives each mode with several UDP peers at once: every
// datagram comes back whole, to its own sender. A lost datagram is sent
// again (UDP promises nothing on a busy machine), but a wrong one fails.
func TestUDPEcho(t *testing.T) {
	for _, mode := range []string{"session", "packet"} {
		t.Run(mode, func(t *testing.T) {
			cfg := config{mode: mode, idleTimeout: time.Minute}
			addr := extest.StartServer(t, func(ctx context.Context, addr string, ready chan<- string) error {
				return run(ctx, cfg, addr, ready)
			})
			const peers, rounds = 8, 20
			errs := make(chan error, peers)
			for p := range peers {
				go func() { errs <- drivePeer(addr, p, rounds) }()
			}
			for range peers {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// drivePeer sends rounds datagrams from one socket and checks each echo.
func drivePeer(addr string, peer, rounds int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := range rounds {
		msg := fmt.Sprintf("peer %d datagram %d", peer, i)
		got := ""
		for try := 0; try < 5 && got != msg; try++ {
			if _, err := c.Write([]byte(msg)); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			for got != msg {
				n, err := c.Read(buf)
				if err != nil {
					break // lost: send again
				}
				got = string(buf[:n])
				if got != msg && !isEarlier(got, peer, i) {
					return fmt.Errorf("peer %d got %q; want %q", peer, got, msg)
				}
			}
		}
		if got != msg {
			return fmt.Errorf("peer %d: no echo of %q after 5 tries", peer, msg)
		}
	}
	return nil
}

// isEarlier reports whether got is the echo of one of this peer's earlier
// datagrams, which a resend can bring back late.
func isEarlier(got string, peer, round int) bool {
	for i := range round {
		if got == fmt.Sprintf("peer %d datagram %d", peer, i) {
			return true
		}
	}
	return false
}

// TestUDPEchoUnknownMode: a bad -mode is an error, not a silent default.
func TestUDPEchoUnknownMode(t *testing.T) {
	if err := run(context.Background(), config{mode: "stream"}, "127.0.0.1:0", nil); err == nil {
		t.Fatal("run with mode stream = nil; want an error")
	}
}
